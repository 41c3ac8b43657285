"""TFMA metrics for next-track retrieval, computed from the `evaluate_examples` signature.

Each evaluation example is one held-out play; the model ranks the whole catalogue for the
play's query and the signature reports the played track's rank and per-list measures of
its top tracks (see components/trainer/export.py). From those one combiner per model
computes:

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
* ``intra_list_diversity@10`` and ``novelty@10``: the means of the signature's per-example
  ``intra_list_diversity`` and ``novelty`` outputs, defined in `list_metrics`. A list without
  a pair of tracks with content has a NaN diversity and is left out of the mean. Sums and
  counts are accumulated, so merging partial results is exact.

* ``index_recall@100``: the mean of the signature's ``index_recall``, the share of the
  served index's top 100 that the exact ranking's top 100 would hold, over warm queries (1
  for a model that ranks by brute force; NaN for a model exported before the output
  existed, or a slice of cold queries only).

* cold start, from the signature's ``label_train_plays`` (the played track's examples in
  the model's own training split): ``cold_recall@K``, ``cold_ndcg@10`` and
  ``cold_eval_plays`` over the plays of catalogue tracks without a training example (0: new
  releases, or any track the split kept out), and the same ``warm_*`` over the other
  catalogue tracks; a play of a track outside the catalogue (-1) is in neither. Cold is relative to
  each model's training data, so a candidate and the blessed baseline are each measured on
  the tracks *they* never saw played: the comparison is of the capability, not of one set of
  plays. A slice without cold plays, or a model exported before the output existed, has
  NaN cold metrics (unknown, not 0).

and, after combining, derived computations add for the candidate:

* ``intra_list_diversity@10_change``: the blessing's no-diversity-regression measure, from
  both models' ``intra_list_diversity@10`` in the slice (see `diversity_change`);
* ``cold_recall@50_change``: the no-cold-start-regression measure, candidate minus baseline
  ``cold_recall@50`` in absolute terms (cold recall can sit near 0, where a relative change
  means little), 0 when either side has fewer than `MIN_COLD_PLAYS` cold plays (see
  `cold_recall_change`).

A model exported before the list outputs existed (the latest blessed model can be one) has
NaN ``intra_list_diversity@10`` and ``novelty@10``: what it did not measure is reported as
unknown, never as 0. Why the gate is a derived value and not a TFMA change threshold is in
`diversity_change`.
"""
import math
from typing import Any, Dict, Iterable, List, Optional, Set

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

from crossfade.components import features
from crossfade.components.evaluator.list_metrics import LIST_CUTOFF

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
INTRA_LIST_DIVERSITY = "intra_list_diversity@{}"
NOVELTY = "novelty@{}"
DIVERSITY_CHANGE = "intra_list_diversity@{}_change"
COLD, WARM = "cold_", "warm_"
INDEX_CUTOFF = 100
INDEX_RECALL = "index_recall@{}"
COLD_CHANGE = "cold_recall@{}_change"
#: Cold plays each model needs before its cold Recall@50 is compared: with fewer, the
#: standard error of the difference between two recalls near 0.3 exceeds 0.065 and the check
#: would gate on noise.
MIN_COLD_PLAYS = 100


def metric_names() -> List[str]:
    """Every metric name the combiner reports (DIVERSITY_CHANGE is derived from them)."""
    return ([RECALL.format(k) for k in RECALL_CUTOFFS] + [NDCG.format(NDCG_CUTOFF)]
            + [COVERAGE.format(k) for k in COVERAGE_CUTOFFS]
            + [POPULARITY_RECALL.format(LIFT_CUTOFF), LIFT.format(LIFT_CUTOFF), EVAL_PLAYS,
               EVAL_USERS, INTRA_LIST_DIVERSITY.format(LIST_CUTOFF),
               NOVELTY.format(LIST_CUTOFF), INDEX_RECALL.format(INDEX_CUTOFF)]
            + [segment + name for segment in (COLD, WARM) for name in _segment_metric_names()])


def _segment_metric_names() -> List[str]:
    """The metrics reported per cold/warm segment, without the segment's prefix."""
    return ([RECALL.format(k) for k in RECALL_CUTOFFS] + [NDCG.format(NDCG_CUTOFF),
                                                          EVAL_PLAYS])


def cold_recall_change(candidate: float, candidate_plays: float, baseline: Optional[float],
                       baseline_plays: float) -> float:
    """The candidate's cold Recall@50 minus the baseline's; 0.0 (nothing to compare) without
    a baseline, or when either model has fewer than `MIN_COLD_PLAYS` cold plays or a NaN
    cold recall (a model exported before ``label_train_plays`` existed)."""
    if baseline is None or min(candidate_plays, baseline_plays) < MIN_COLD_PLAYS:
        return 0.0
    if math.isnan(candidate) or math.isnan(baseline):
        return 0.0
    return candidate - baseline


def diversity_change(candidate: float, baseline: Optional[float]) -> float:
    """The candidate's relative change in intra_list_diversity@10 against the baseline's.

    (candidate - baseline) / baseline: what TFMA's relative change threshold computes, and the
    blessing requires it to be at least -diversity_regression_tolerance. Where that ratio is
    undefined:

    * no baseline (first run), or the baseline's value is NaN (a model exported before the
      output existed, or a catalogue without content): 0.0, nothing to regress from;
    * the candidate's value is NaN but the baseline's is not (its catalogue lost all content,
      or its export is broken): -1.0, as if all diversity were lost, so it fails any tolerance
      below 1 (1 turns the gate off);
    * a baseline of 0 (all its pairs alike): 0.0, or inf if the candidate's is above 0.

    It is not a TFMA change threshold because TFMA (0.47) fails that check in these cases: it
    only forms the candidate-minus-baseline diff when the baseline reports the metric ("Metric
    not found" otherwise), a NaN diff fails (NaN >= bound is false), and so does a 0 baseline
    (its ratio is NaN). The latest blessed model stays the baseline until a candidate passes,
    so each of those would deny blessing to every later candidate.
    """
    if baseline is None or math.isnan(baseline):
        return 0.0
    if math.isnan(candidate):
        return -1.0
    if baseline <= 0.0:
        return math.inf if candidate > 0.0 else 0.0
    return (candidate - baseline) / baseline


class RetrievalMetrics(metric_types.Metric):
    """All retrieval metrics of the module docstring, from one pass over the predictions."""

    def __init__(self, name: str = "retrieval"):
        super().__init__(_retrieval_computations, name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


metric_types.register_metric(RetrievalMetrics)


def _key(metric: str, model_name: str) -> metric_types.MetricKey:
    # example_weighted=None matches the keys TFMA builds for MetricsSpec.thresholds, which is
    # where thresholds on the individual metrics of one MetricConfig are declared.
    return metric_types.MetricKey(name=metric, model_name=model_name, example_weighted=None)


def _retrieval_computations(name: str = "retrieval",
                            eval_config: Optional[config_pb2.EvalConfig] = None,
                            model_names: Optional[List[str]] = None,
                            output_names: Optional[List[str]] = None,
                            sub_keys: Optional[List[Any]] = None,
                            example_weighted: Optional[bool] = None
                            ) -> metric_types.MetricComputations:
    del name, output_names, sub_keys, example_weighted  # plays are unweighted
    model_names = model_names or [""]
    computations: metric_types.MetricComputations = []
    for model_name in model_names:
        keys = {metric: _key(metric, model_name) for metric in metric_names()}
        computations.append(metric_types.MetricComputation(
            keys=list(keys.values()),
            preprocessors=[metric_types.StandardMetricInputsPreprocessor(
                include_filter={"predictions": {}, "features": {features.USER_ID: {}}},
                include_default_inputs=False)],
            combiner=_RetrievalCombiner(model_name, keys)))
    baseline_spec = model_util.get_baseline_model_spec(eval_config) if eval_config else None
    baseline = baseline_spec.name if baseline_spec else None
    computations.append(_diversity_change_computation(model_names, baseline))
    computations.append(_cold_change_computation(model_names, baseline))
    return computations


def _diversity_change_computation(model_names: List[str], baseline: Optional[str]
                                  ) -> metric_types.DerivedMetricComputation:
    """DIVERSITY_CHANGE of every model but the baseline, from the slice's combined metrics."""
    diversity = INTRA_LIST_DIVERSITY.format(LIST_CUTOFF)
    change_keys = {model_name: _key(DIVERSITY_CHANGE.format(LIST_CUTOFF), model_name)
                   for model_name in model_names if model_name != baseline}

    def result(metrics: Dict[metric_types.MetricKey, Any]) -> Dict[metric_types.MetricKey, float]:
        reference = (None if baseline is None
                     else float(metrics.get(_key(diversity, baseline), math.nan)))
        return {key: diversity_change(float(metrics.get(_key(diversity, model_name), math.nan)),
                                      reference)
                for model_name, key in change_keys.items()}

    return metric_types.DerivedMetricComputation(keys=list(change_keys.values()), result=result)


def _cold_change_computation(model_names: List[str], baseline: Optional[str]
                             ) -> metric_types.DerivedMetricComputation:
    """COLD_CHANGE of every model but the baseline, from the slice's combined metrics."""
    recall = COLD + RECALL.format(LIFT_CUTOFF)
    change_keys = {model_name: _key(COLD_CHANGE.format(LIFT_CUTOFF), model_name)
                   for model_name in model_names if model_name != baseline}

    def value(metrics: Dict[metric_types.MetricKey, Any], name: str, model: str) -> float:
        return float(metrics.get(_key(name, model), math.nan))

    def result(metrics: Dict[metric_types.MetricKey, Any]) -> Dict[metric_types.MetricKey, float]:
        plays = COLD + EVAL_PLAYS
        return {key: cold_recall_change(
                    value(metrics, recall, model_name), value(metrics, plays, model_name),
                    None if baseline is None else value(metrics, recall, baseline),
                    0.0 if baseline is None else value(metrics, plays, baseline))
                for model_name, key in change_keys.items()}

    return metric_types.DerivedMetricComputation(keys=list(change_keys.values()), result=result)


class _Segment:
    """Hits and DCG over the plays of one segment (all plays, or the cold or warm ones)."""

    def __init__(self):
        self.plays = 0
        self.hits = {k: 0 for k in RECALL_CUTOFFS}
        self.dcg = 0.0

    def add(self, ranks: np.ndarray) -> None:
        self.plays += len(ranks)
        for k in RECALL_CUTOFFS:
            self.hits[k] += int(np.sum(ranks < k))
        in_top = ranks < NDCG_CUTOFF
        self.dcg += float(np.sum(1.0 / np.log2(ranks[in_top] + 2.0)))

    def merge(self, other: "_Segment") -> None:
        self.plays += other.plays
        self.dcg += other.dcg
        for k in RECALL_CUTOFFS:
            self.hits[k] += other.hits[k]

    def values(self) -> Dict[str, float]:
        """Recall@K and NDCG@10 (NaN without plays) and the play count."""
        values = {RECALL.format(k): _mean(self.hits[k], self.plays) for k in RECALL_CUTOFFS}
        values[NDCG.format(NDCG_CUTOFF)] = _mean(self.dcg, self.plays)
        values[EVAL_PLAYS] = float(self.plays)
        return values


def rank_metrics(ranks: np.ndarray) -> Dict[str, float]:
    """Recall@K, NDCG@10 and the play count of held-out plays from their 0-based ranks
    (`evaluate_examples`' ``label_rank``), as the combiner computes them over all plays: for
    callers outside TFMA, such as the Tuner's trials (components/tuner)."""
    segment = _Segment()
    segment.add(np.asarray(ranks).ravel())
    return segment.values()


class _Accumulator:
    """Running sums over evaluation plays; `recommended[k]` marks catalogue rows seen in top k."""

    def __init__(self):
        self.all = _Segment()
        self.popularity_hits = 0
        # Only plays whose model reports `label_train_plays`.
        self.cold, self.warm = _Segment(), _Segment()
        self.users: Set[bytes] = set()
        self.recommended: Dict[int, Optional[np.ndarray]] = {k: None for k in COVERAGE_CUTOFFS}
        # Per-list metrics: sums and how many lists had a value (0: the model has no output).
        self.diversity_sum, self.diversity_lists = 0.0, 0
        self.novelty_sum, self.novelty_lists = 0.0, 0
        self.index_recall_sum, self.index_recall_lists = 0.0, 0

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


def _add_list_metrics(accumulator: _Accumulator, outputs: Dict[str, np.ndarray]) -> None:
    """Adds the per-list outputs, if the model has them (older exports do not)."""
    if "intra_list_diversity" in outputs:
        diversity = np.asarray(outputs["intra_list_diversity"], dtype=np.float64).ravel()
        measured = diversity[~np.isnan(diversity)]  # NaN: no pair of tracks with content
        accumulator.diversity_sum += float(measured.sum())
        accumulator.diversity_lists += len(measured)
    if "novelty" in outputs:
        # Every list has a novelty; a NaN (a broken export) is kept, to show in the mean.
        novelty = np.asarray(outputs["novelty"], dtype=np.float64).ravel()
        accumulator.novelty_sum += float(novelty.sum())
        accumulator.novelty_lists += len(novelty)
    if "index_recall" in outputs:
        recall = np.asarray(outputs["index_recall"], dtype=np.float64).ravel()
        recall = recall[~np.isnan(recall)]  # NaN: a cold query, answered exactly
        accumulator.index_recall_sum += float(recall.sum())
        accumulator.index_recall_lists += len(recall)


def _mean(total: float, count: int) -> float:
    return total / count if count else math.nan  # NaN: nothing measured, not a measured 0


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
        accumulator.all.add(ranks)
        accumulator.users.update(_user_ids(element))
        accumulator.popularity_hits += int(np.sum(popularity_ranks < LIFT_CUTOFF))
        for k in COVERAGE_CUTOFFS:
            accumulator.mark(k, top[:, :k].ravel(), catalogue_size)
        _add_list_metrics(accumulator, outputs)
        if "label_train_plays" in outputs:
            # -1: the track is not in the catalogue, in neither segment (it cannot be
            # recommended at all, which says nothing about cold start).
            train_plays = np.atleast_1d(np.asarray(outputs["label_train_plays"])).ravel()
            accumulator.cold.add(ranks[train_plays == 0])
            accumulator.warm.add(ranks[train_plays > 0])
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        merged = _Accumulator()
        for accumulator in accumulators:
            merged.all.merge(accumulator.all)
            merged.popularity_hits += accumulator.popularity_hits
            merged.users |= accumulator.users
            merged.diversity_sum += accumulator.diversity_sum
            merged.diversity_lists += accumulator.diversity_lists
            merged.novelty_sum += accumulator.novelty_sum
            merged.novelty_lists += accumulator.novelty_lists
            merged.index_recall_sum += accumulator.index_recall_sum
            merged.index_recall_lists += accumulator.index_recall_lists
            merged.cold.merge(accumulator.cold)
            merged.warm.merge(accumulator.warm)
            for k in COVERAGE_CUTOFFS:
                rows = accumulator.recommended[k]
                if rows is not None:
                    merged.mark(k, np.flatnonzero(rows), len(rows))
        return merged

    def extract_output(self, accumulator: _Accumulator
                       ) -> Dict[metric_types.MetricKey, float]:
        # Overall, no plays reads as 0 (the eval_plays minimum refuses such a model anyway).
        values = {name: 0.0 if math.isnan(value) else value
                  for name, value in accumulator.all.values().items()}
        plays = max(accumulator.all.plays, 1)
        for k in COVERAGE_CUTOFFS:
            rows = accumulator.recommended[k]
            values[COVERAGE.format(k)] = float(rows.mean()) if rows is not None else 0.0
        popularity = accumulator.popularity_hits / plays
        values[POPULARITY_RECALL.format(LIFT_CUTOFF)] = popularity
        recall = values[RECALL.format(LIFT_CUTOFF)]
        values[LIFT.format(LIFT_CUTOFF)] = recall / popularity if popularity > 0 else (
            float("inf") if recall > 0 else 0.0)
        values[EVAL_USERS] = float(len(accumulator.users))
        values[INTRA_LIST_DIVERSITY.format(LIST_CUTOFF)] = _mean(accumulator.diversity_sum,
                                                                 accumulator.diversity_lists)
        values[NOVELTY.format(LIST_CUTOFF)] = _mean(accumulator.novelty_sum,
                                                    accumulator.novelty_lists)
        values[INDEX_RECALL.format(INDEX_CUTOFF)] = _mean(accumulator.index_recall_sum,
                                                          accumulator.index_recall_lists)
        for prefix, segment in ((COLD, accumulator.cold), (WARM, accumulator.warm)):
            values.update({prefix + name: value for name, value in segment.values().items()})
        return {self._keys[name]: value for name, value in values.items()}
