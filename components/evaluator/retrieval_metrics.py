"""TFMA metrics for next-track retrieval, computed from the `evaluate_examples` signature.

Each evaluation example is one held-out play; the model ranks the whole catalogue for the
play's query and the signature reports the played track's rank (see
components/trainer/export.py). From those ranks one combiner computes:

* ``recall@K`` (K in 10, 50, 100): share of plays whose track is in the top K. With a single
  relevant track per query this is also the hit rate.
* ``ndcg@10``: mean of 1 / log2(rank + 2) over plays ranked in the top 10 (0 otherwise).
* ``coverage@K`` (K in 10, 100): share of the catalogue recommended in at least one top-K list.
* ``popularity_recall@50``: recall@50 of a most-popular ranking (training play counts) on the
  same plays, and ``recall@50_lift``: recall@50 / popularity_recall@50. The blessing floor is
  stated on the lift, so it means the same on any dataset.
* ``eval_plays`` and ``eval_users``: how many plays and distinct users (the examples'
  ``user_id`` feature) were evaluated. The blessing gate requires minimums of both, so a
  handful of held-out plays (e.g. an eval window moved by a few future-dated plays) can
  never bless a model.
"""
from typing import Any, Dict, Iterable, List, Optional, Set

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from crossfade.components import features

RECALL_CUTOFFS = (10, 50, 100)
COVERAGE_CUTOFFS = (10, 100)
NDCG_CUTOFF = 10
LIFT_CUTOFF = 50

RECALL = "recall@{}"
NDCG = "ndcg@{}"
COVERAGE = "coverage@{}"
POPULARITY_RECALL = "popularity_recall@{}"
LIFT = "recall@{}_lift"
EVAL_PLAYS = "eval_plays"
EVAL_USERS = "eval_users"


def metric_names() -> List[str]:
    """Every metric name RetrievalMetrics reports."""
    return ([RECALL.format(k) for k in RECALL_CUTOFFS] + [NDCG.format(NDCG_CUTOFF)]
            + [COVERAGE.format(k) for k in COVERAGE_CUTOFFS]
            + [POPULARITY_RECALL.format(LIFT_CUTOFF), LIFT.format(LIFT_CUTOFF), EVAL_PLAYS,
               EVAL_USERS])


class RetrievalMetrics(metric_types.Metric):
    """All retrieval metrics of the module docstring, from one pass over the predictions."""

    def __init__(self, name: str = "retrieval"):
        super().__init__(_retrieval_computations, name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


metric_types.register_metric(RetrievalMetrics)


def _retrieval_computations(name: str = "retrieval",
                            model_names: Optional[List[str]] = None,
                            output_names: Optional[List[str]] = None,
                            sub_keys: Optional[List[Any]] = None,
                            example_weighted: Optional[bool] = None
                            ) -> metric_types.MetricComputations:
    del name, output_names, sub_keys, example_weighted  # plays are unweighted
    computations = []
    for model_name in model_names or [""]:
        # example_weighted=None matches the keys TFMA builds for MetricsSpec.thresholds, which
        # is where thresholds on the individual metrics of one MetricConfig are declared.
        keys = {metric: metric_types.MetricKey(name=metric, model_name=model_name,
                                               example_weighted=None)
                for metric in metric_names()}
        computations.append(metric_types.MetricComputation(
            keys=list(keys.values()),
            preprocessors=[metric_types.StandardMetricInputsPreprocessor(
                include_filter={"predictions": {}, "features": {features.USER_ID: {}}},
                include_default_inputs=False)],
            combiner=_RetrievalCombiner(model_name, keys)))
    return computations


class _Accumulator:
    """Running sums over evaluation plays; `recommended[k]` marks catalogue rows seen in top k."""

    def __init__(self):
        self.plays = 0
        self.hits = {k: 0 for k in RECALL_CUTOFFS}
        self.popularity_hits = 0
        self.dcg = 0.0
        self.users: Set[bytes] = set()
        self.recommended: Dict[int, Optional[np.ndarray]] = {k: None for k in COVERAGE_CUTOFFS}

    def mark(self, k: int, rows: np.ndarray, catalogue_size: int) -> None:
        if self.recommended[k] is None:
            self.recommended[k] = np.zeros(catalogue_size, dtype=bool)
        self.recommended[k][rows] = True


def _user_ids(element: metric_types.StandardMetricInputs) -> List[bytes]:
    """The user ids of an input (one play or a batch), flattened."""
    values = (element.features or {}).get(features.USER_ID)
    if values is None:
        return []
    flat = []
    for value in np.asarray(values, dtype=object).ravel():
        flat.extend(np.asarray(value, dtype=object).ravel().tolist())
    return [v if isinstance(v, bytes) else str(v).encode() for v in flat]


def _as_dict(predictions: Any, model_name: str) -> Dict[str, np.ndarray]:
    if model_name and isinstance(predictions, dict) and model_name in predictions:
        predictions = predictions[model_name]
    if not isinstance(predictions, dict) or "label_rank" not in predictions:
        raise ValueError("RetrievalMetrics needs the outputs of the 'evaluate_examples' "
                         f"signature; got {type(predictions).__name__} {predictions!r:.200}")
    return predictions


class _RetrievalCombiner(beam.CombineFn):
    """Accumulates ranks and recommended rows; see the module docstring for the metrics."""

    def __init__(self, model_name: str, keys: Dict[str, metric_types.MetricKey]):
        self._model_name = model_name
        self._keys = keys

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator()

    def add_input(self, accumulator: _Accumulator,
                  element: metric_types.StandardMetricInputs) -> _Accumulator:
        outputs = _as_dict(element.prediction, self._model_name)
        ranks = np.atleast_1d(np.asarray(outputs["label_rank"]))
        popularity_ranks = np.atleast_1d(np.asarray(outputs["popularity_rank"]))
        top = np.asarray(outputs["top_indices"]).reshape(len(ranks), -1)
        catalogue_size = int(np.atleast_1d(np.asarray(outputs["catalogue_size"]))[0])
        accumulator.plays += len(ranks)
        accumulator.users.update(_user_ids(element))
        for k in RECALL_CUTOFFS:
            accumulator.hits[k] += int(np.sum(ranks < k))
        accumulator.popularity_hits += int(np.sum(popularity_ranks < LIFT_CUTOFF))
        in_top = ranks < NDCG_CUTOFF
        accumulator.dcg += float(np.sum(1.0 / np.log2(ranks[in_top] + 2.0)))
        for k in COVERAGE_CUTOFFS:
            accumulator.mark(k, top[:, :k].ravel(), catalogue_size)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        merged = _Accumulator()
        for accumulator in accumulators:
            merged.plays += accumulator.plays
            merged.popularity_hits += accumulator.popularity_hits
            merged.dcg += accumulator.dcg
            merged.users |= accumulator.users
            for k in RECALL_CUTOFFS:
                merged.hits[k] += accumulator.hits[k]
            for k in COVERAGE_CUTOFFS:
                rows = accumulator.recommended[k]
                if rows is not None:
                    merged.mark(k, np.flatnonzero(rows), len(rows))
        return merged

    def extract_output(self, accumulator: _Accumulator
                       ) -> Dict[metric_types.MetricKey, float]:
        plays = max(accumulator.plays, 1)
        values = {RECALL.format(k): accumulator.hits[k] / plays for k in RECALL_CUTOFFS}
        values[NDCG.format(NDCG_CUTOFF)] = accumulator.dcg / plays
        for k in COVERAGE_CUTOFFS:
            rows = accumulator.recommended[k]
            values[COVERAGE.format(k)] = float(rows.mean()) if rows is not None else 0.0
        popularity = accumulator.popularity_hits / plays
        values[POPULARITY_RECALL.format(LIFT_CUTOFF)] = popularity
        recall = values[RECALL.format(LIFT_CUTOFF)]
        values[LIFT.format(LIFT_CUTOFF)] = recall / popularity if popularity > 0 else (
            float("inf") if recall > 0 else 0.0)
        values[EVAL_PLAYS] = float(accumulator.plays)
        values[EVAL_USERS] = float(len(accumulator.users))
        return {self._keys[name]: value for name, value in values.items()}
