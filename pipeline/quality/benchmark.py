"""`crossfade benchmark quality`: the two-tower model against the baselines a practitioner
would pick instead, on real data, one split per seed.

For each seed the dataset (imported by components/listening_data/importers.py) runs through
the real pipeline (PlaysExampleGen with the split protocol, StreamQualifier, Transform,
CatalogueTrainer, Evaluator, Pusher; pipeline/pipeline.py) with the dataset's hyperparameters
(pipeline/configs.py, `DATASET_HYPERPARAMETERS`). The benchmark then reads back exactly what
the pipeline produced: the qualified train, eval and test examples, the catalogue and the
Trainer's SavedModel. On those same splits:

* the two-tower model ranks the whole catalogue through its `query_embedding` and
  `candidate_embedding` signatures (the model TF Serving serves); each user's query is their
  first test play's query features (the user id and the history the ExampleGen gave it);
* most-popular, item-kNN, EASE and implicit ALS (pipeline/quality/baselines.py) are fit on the
  train split, their hyperparameter tuned on the eval split.

With `--tune` every seed's pipeline runs the Tuner (components/tuner) on that seed's split:
its trials train on train and are scored on eval, the Trainer trains the winner; the test
split is read only afterwards, by the benchmark. The winners are in results.json
(`details.tuning`) and quality.md.

Ranking is full (every catalogue item) and excludes what the user has in train and eval; a
user's relevant items are their test items outside that set, and users with none, or with
no train items, are left out (as in RecBole's full-sort evaluation). Metrics: Recall@10,
NDCG@10, Hit@10 and Recall@K for K = 1..100 (pipeline/quality/ranking_metrics.py), and of the
top-10 lists: ILD@10 (intra-list diversity on the catalogue's genres and tags), novelty@10
(mean self-information of the listed items under the training counts: users per item in the
train matrix) with their one definition in `crossfade.components.evaluator.list_metrics`, and
coverage@10 (share of the catalogue in at least one evaluated user's top 10).

Two more views of the two-tower model, on the same users and queries:

* **diversity sweep**: the model's `recommend` signature (the re-ranking TF Serving runs)
  with each requested `diversity`, explore 0, k = 10 and the user's train and eval items as
  `exclude_track_ids`, so the protocol stays full-sort (on Last.fm HetRec that is at most about
  45 ids per request). At diversity 0 `recommend` is pure relevance, so its Recall@10 must
  equal the full-sort scoring's; the gap is recorded per seed (`FULL_SORT_GAP`) as a check of
  the served path, not hidden by tolerance.
* **stored history**: the same queries with `recent_track_ids` emptied, which makes the model
  fall back on the user's training history stored in it. "user id alone" against
  "user id + history" Recall@10, and their ratio (the target is >= `HISTORY_RATIO_TARGET`).

Outputs: results.json (every method's metrics, the sweep and the stored-history rows as
{"mean", "per_seed"}, plus details; never secrets such as the pseudonym key's path),
quality.md, recall_at_k.png and diversity_tradeoff.png (Recall@10 against ILD@10).
"""
import dataclasses
import functools
import glob
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tfx.utils import path_utils

from crossfade.components.evaluator import list_metrics
from crossfade.components.example_gen.listening_example_gen import CATALOGUE_SPLIT
from crossfade.components.example_gen.split_protocols import (
    EVAL_SPLIT,
    SPLIT_NAMES,
    TEST_SPLIT,
    TRAIN_SPLIT,
)
from crossfade.pipeline import run_summary
from crossfade.pipeline.quality import SIMULATED, baselines, ranking_metrics, report
from crossfade.serving import signatures

TWO_TOWER = "two-tower"
METHODS = (TWO_TOWER,) + baselines.METHODS
CUTOFF = list_metrics.LIST_CUTOFF  # the "@10" of every metric name below
ACCURACY_METRICS = ("recall@10", "ndcg@10", "hit@10")
LIST_METRICS = ("ild@10", "novelty@10", "coverage@10")
METRICS = ACCURACY_METRICS + LIST_METRICS
# Recall@10 on test items never played in training (cold: new releases) and on the rest, each
# over the users with such items; with how many (user, cold item) pairs there are. Only where
# the split leaves cold test items (`EvaluationSet.segments`).
COLD_METRICS = ("cold recall@10", "warm recall@10", "cold test items")
CURVE_MAX_K = 100
DEFAULT_DIVERSITIES = (0.0,)
FULL_SORT_GAP = "recall@10 minus full sort"  # diversity 0 only; 0 when serving is consistent
WITH_HISTORY, USER_ID_ALONE = "user id + history", "user id alone"
HISTORY_RATIO = "recall@10 ratio"
HISTORY_RATIO_TARGET = 0.98
_QUERY_BATCH = 1024
# Rows per `recommend` call: its re-ranking holds a [rows, 200, 200] similarity tensor.
_RECOMMEND_BATCH = 256


@dataclasses.dataclass
class SplitMatrices:
    """Binary user x item matrices of one seed's splits, on shared indices."""

    users: np.ndarray  # [U] user ids
    items: np.ndarray  # [I] catalogue track ids, catalogue order
    train: sp.csr_matrix
    eval: sp.csr_matrix
    test: sp.csr_matrix
    # split -> raw query features of each user's first play in that held-out split, with
    # "row" the user's row in the matrices (users without plays there have no entry).
    queries: Dict[str, Dict[str, np.ndarray]]
    # [I, F] the catalogue's genres and tags (list_metrics.content_matrix), for ILD.
    content: Optional[sp.csr_matrix] = None


def _read_examples(pattern: str, names: Sequence[str]) -> Dict[str, np.ndarray]:
    import tensorflow as tf

    from crossfade.components import features
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no examples match {pattern}")
    spec = {name: features.RAW_FEATURE_SPEC[name] for name in names}
    parts: Dict[str, List[np.ndarray]] = {name: [] for name in names}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    for batch in dataset.map(lambda records: tf.io.parse_example(records, spec)):
        for name in names:
            parts[name].append(batch[name].numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def _matrix(user_rows: np.ndarray, item_rows: np.ndarray, shape) -> sp.csr_matrix:
    known = (user_rows >= 0) & (item_rows >= 0)
    matrix = sp.csr_matrix((np.ones(int(known.sum()), np.float32),
                            (user_rows[known], item_rows[known])), shape=shape)
    matrix.data[:] = 1.0  # duplicates (replays) are summed by the constructor; binarise
    return matrix


def split_matrices(examples_uri: str, catalogue_uri: str) -> SplitMatrices:
    """The user x item matrices of a run's qualified splits, over the run's catalogue."""
    from crossfade.components import features
    catalogue = _read_examples(_split_files(catalogue_uri, CATALOGUE_SPLIT),
                               [features.TRACK_ID, features.GENRES, features.TAGS])
    query_names = [features.USER_ID, features.TRACK_ID, features.TIMESTAMP,
                   features.RECENT_TRACK_IDS, features.PLATFORM]
    splits = {split: _read_examples(_split_files(examples_uri, split),
                                    query_names if split != TRAIN_SPLIT
                                    else [features.USER_ID, features.TRACK_ID])
              for split in SPLIT_NAMES}
    users = np.array(sorted(set(splits[TRAIN_SPLIT][features.USER_ID])), dtype=object)
    items = catalogue[features.TRACK_ID]
    user_index, item_index = pd.Index(users), pd.Index(items)
    shape = (len(users), len(items))
    matrices = {split: _matrix(user_index.get_indexer(values[features.USER_ID]),
                               item_index.get_indexer(values[features.TRACK_ID]), shape)
                for split, values in splits.items()}
    queries = {split: _first_play_queries(splits[split], user_index)
               for split in (EVAL_SPLIT, TEST_SPLIT)}
    content = list_metrics.content_matrix(catalogue[features.GENRES], catalogue[features.TAGS])
    return SplitMatrices(users=users, items=items, train=matrices[TRAIN_SPLIT],
                         eval=matrices[EVAL_SPLIT], test=matrices[TEST_SPLIT], queries=queries,
                         content=content)


def _split_files(examples_uri: str, split: str) -> str:
    """The file pattern of one split of an Examples artifact (TFX's `Split-<name>` folders)."""
    return os.path.join(examples_uri, f"Split-{split}", "*")


def _first_play_queries(plays: Dict[str, np.ndarray],
                        user_index: pd.Index) -> Dict[str, np.ndarray]:
    """Query features of each user's first play (earliest, then by track) in `plays`."""
    from crossfade.components import features
    users = plays[features.USER_ID]
    order = np.lexsort((plays[features.TRACK_ID], plays[features.TIMESTAMP], users))
    first = order[np.r_[True, users[order][1:] != users[order][:-1]]]
    rows = user_index.get_indexer(users[first])
    first, rows = first[rows >= 0], rows[rows >= 0]
    queries = {name: plays[name][first] for name in
               (features.USER_ID, features.RECENT_TRACK_IDS, features.TIMESTAMP,
                features.PLATFORM)}
    queries["row"] = rows
    return queries


def _queries_for(queries: Dict[str, np.ndarray], rows: np.ndarray) -> Dict[str, np.ndarray]:
    """The entries of `queries` for user rows `rows`, in that order (each must have one)."""
    position = pd.Index(queries["row"]).get_indexer(rows)
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} evaluated users have no query")
    return {name: values[position] for name, values in queries.items()}


def _without_history(queries: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """`queries` with every recent track id "": the model falls back on its stored history."""
    from crossfade.components import features
    empty = np.full(queries[features.RECENT_TRACK_IDS].shape, b"", dtype=object)
    return {**queries, features.RECENT_TRACK_IDS: empty}


class ServedTwoTower:
    """The Trainer's SavedModel, asked through the signatures TF Serving serves."""

    def __init__(self, model_dir: str, items: np.ndarray):
        import tensorflow as tf
        self._tf = tf
        self._model = tf.saved_model.load(model_dir)
        self._items = items
        self._item_index = pd.Index(items)
        # The model's catalogue order -> `items` order, for its full score rows.
        self._columns = pd.Index(self._model.catalogue_ids.numpy()).get_indexer(items)
        if (self._columns < 0).any():
            raise ValueError("the model's catalogue lacks some of the benchmark's items")

    def _query_inputs(self, queries: Dict[str, np.ndarray], window: slice) -> Dict[str, Any]:
        from crossfade.components import features
        constant = self._tf.constant
        return {"user_id": constant(queries[features.USER_ID][window]),
                "recent_track_ids": constant(queries[features.RECENT_TRACK_IDS][window]),
                "timestamp": constant(queries[features.TIMESTAMP][window]),
                "platform": constant(queries[features.PLATFORM][window])}

    def scores(self, queries: Dict[str, np.ndarray], num_users: int) -> np.ndarray:
        """[num_users, I] scores of `queries` in their users' rows (rows without a query are
        0): the model's own full scoring (`catalogue_scores`: the cosine plus the recency
        bias, as every ranking signature scores), columns in `items` order."""
        scores = np.zeros((num_users, len(self._items)), np.float32)
        for start in range(0, len(queries["row"]), _QUERY_BATCH):
            window = slice(start, start + _QUERY_BATCH)
            full = self._model.catalogue_scores(**self._query_inputs(queries, window)).numpy()
            scores[queries["row"][window]] = full[:, self._columns]
        return scores

    def recommend(self, queries: Dict[str, np.ndarray], exclude: sp.csr_matrix,
                  diversity: float, seed: int, k: int = CUTOFF) -> np.ndarray:
        """[len(queries), k] item indices (`ranking_metrics.PAD` where the list ran out) from
        the `recommend` signature, without exploration, row r never listing an item stored
        in `exclude` row r. Requests are built as clients build them
        (`signatures.recommend_controls_inputs`)."""
        recommend = self._model.signatures[signatures.RECOMMEND]
        top = np.full((len(queries["row"]), k), ranking_metrics.PAD, np.int64)
        for start in range(0, len(top), _RECOMMEND_BATCH):
            window = slice(start, start + _RECOMMEND_BATCH)
            inputs = self._controlled_inputs(queries, window, exclude[window], diversity,
                                             seed, k)
            ids = recommend(**{name: self._tf.constant(value)
                               for name, value in inputs.items()})["track_ids"].numpy()
            ids = ids[:, :k]
            # "" (a row with fewer eligible tracks than k) is no catalogue id: it maps to PAD.
            top[window, :ids.shape[1]] = self._item_index.get_indexer(ids.ravel()).reshape(
                ids.shape)
        return top

    def blend(self, members: Sequence[Dict[str, np.ndarray]], exclude: sp.csr_matrix,
              strategy: str, k: int) -> np.ndarray:
        """[P, k] item indices (PAD past the end) from the `blend` signature for P groups:
        `members[m]` holds member m's queries (one row per group), `exclude` row p the
        items group p must not get."""
        from crossfade.components import features
        blend = self._model.signatures[signatures.BLEND]
        size = len(members[0][features.USER_ID])
        top = np.full((size, k), ranking_metrics.PAD, np.int64)
        exclude = sp.csr_matrix(exclude)
        for start in range(0, size, _RECOMMEND_BATCH):
            rows = range(start, min(start + _RECOMMEND_BATCH, size))
            inputs = signatures.blend_inputs(
                [[q[features.USER_ID][r] for q in members] for r in rows],
                [[list(q[features.RECENT_TRACK_IDS][r]) for q in members] for r in rows],
                k, strategy, [members[0][features.PLATFORM][r] for r in rows],
                [int(members[0][features.TIMESTAMP][r]) for r in rows],
                exclude=[list(self._items[exclude.indices[exclude.indptr[r]:
                                                          exclude.indptr[r + 1]]])
                         for r in rows])
            ids = blend(**{name: self._tf.constant(value)
                           for name, value in inputs.items()})["track_ids"].numpy()[:, :k]
            top[start:start + len(rows), :ids.shape[1]] = self._item_index.get_indexer(
                ids.ravel()).reshape(ids.shape)
        return top

    def _controlled_inputs(self, queries: Dict[str, np.ndarray], window: slice,
                           exclude: sp.csr_matrix, diversity: float, seed: int,
                           k: int) -> Dict[str, np.ndarray]:
        from crossfade.components import features
        exclude = sp.csr_matrix(exclude)
        return signatures.recommend_controls_inputs(
            list(queries[features.USER_ID][window]),
            [list(row) for row in queries[features.RECENT_TRACK_IDS][window]], k,
            list(queries[features.PLATFORM][window]),
            [int(ts) for ts in queries[features.TIMESTAMP][window]],
            exclude=[list(self._items[exclude.indices[exclude.indptr[row]:
                                                      exclude.indptr[row + 1]]])
                     for row in range(exclude.shape[0])],
            diversity=float(diversity), explore=0.0, seed=int(seed))


@dataclasses.dataclass
class EvaluationSet:
    """Who every method is measured on in one seed, against what."""

    users: np.ndarray  # [V] evaluated user rows
    seen: sp.csr_matrix  # [U, I] train + eval items: excluded from every ranking
    relevant: sp.csr_matrix  # [U, I] test items outside `seen`
    content: Optional[sp.csr_matrix]  # [I, F] genres and tags, for ILD (None: not measured)
    information: np.ndarray  # [I] self-information of the training counts, bits
    cold: Optional[np.ndarray] = None  # [I] True for items without a training play

    @classmethod
    def of(cls, matrices: SplitMatrices) -> "EvaluationSet":
        seen = (matrices.train + matrices.eval).tocsr()
        seen.data[:] = 1.0
        relevant = matrices.test - matrices.test.multiply(seen)
        relevant.eliminate_zeros()
        users = np.flatnonzero((np.diff(relevant.indptr) > 0)
                               & (np.diff(matrices.train.indptr) > 0))
        users_per_item = np.asarray(matrices.train.sum(axis=0)).ravel()
        return cls(users=users, seen=seen, relevant=relevant, content=matrices.content,
                   information=list_metrics.self_information(users_per_item),
                   cold=users_per_item == 0)

    def measure(self, top: np.ndarray) -> Dict[str, float]:
        """Accuracy and list metrics at CUTOFF of [V, >= CUTOFF] lists (rows = `users`)."""
        result = ranking_metrics.ranking_metrics(top, self.relevant[self.users], k=CUTOFF)
        return {**result, **self.list_quality(top), **self.segments(top)}

    @functools.cached_property
    def _cold_and_warm(self) -> "Tuple[sp.csr_matrix, sp.csr_matrix] | None":
        """The evaluated users' relevant items split into cold and warm, once per evaluation
        set (every method is measured against them); None without cold items."""
        if self.cold is None:
            return None
        relevant = self.relevant[self.users].tocsr()
        cold = relevant.multiply(sp.csr_matrix(self.cold.astype(float))).tocsr()
        cold.eliminate_zeros()
        if not cold.nnz:
            return None
        warm = (relevant - cold).tocsr()
        warm.eliminate_zeros()
        return cold, warm

    def segments(self, top: np.ndarray) -> Dict[str, float]:
        """`COLD_METRICS` of [V, >= CUTOFF] lists; {} when no evaluated user has a cold test
        item (or `cold` is unknown)."""
        if self._cold_and_warm is None:
            return {}
        cold, warm = self._cold_and_warm
        result = {"cold recall@10": ranking_metrics.ranking_metrics(top, cold, CUTOFF)[
            "recall@10"], "cold test items": float(cold.nnz)}
        if warm.nnz:
            result["warm recall@10"] = ranking_metrics.ranking_metrics(top, warm, CUTOFF)[
                "recall@10"]
        return result

    def list_quality(self, top: np.ndarray) -> Dict[str, float]:
        """ILD@10 (left out when no list has a pair with content), novelty@10, coverage@10."""
        lists = np.asarray(top)[:, :CUTOFF]
        result = {"novelty@10": _mean_defined(list_metrics.novelty(lists, self.information)),
                  "coverage@10": ranking_metrics.coverage(lists, len(self.information), CUTOFF)}
        if self.content is not None:
            ild = _mean_defined(list_metrics.intra_list_diversity(lists, self.content))
            if np.isfinite(ild):
                result["ild@10"] = ild
        return result


def _mean_defined(values: np.ndarray) -> float:
    """Mean over the finite entries (NaN: the metric is undefined for that list), else NaN."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def _evaluate(scores: np.ndarray, evaluation: EvaluationSet) -> Dict[str, Any]:
    """Every metric, and the recall curve, of [V, I] scores of the evaluated users."""
    users = evaluation.users
    top = ranking_metrics.top_k(scores, evaluation.seen[users], CURVE_MAX_K)
    result: Dict[str, Any] = evaluation.measure(top)
    result["recall_curve"] = ranking_metrics.recall_curve(top, evaluation.relevant[users],
                                                          CURVE_MAX_K)
    return result


def _baseline_factories(seed: int, content: Optional[sp.csr_matrix] = None
                        ) -> Dict[str, Callable[[Any], baselines.Recommender]]:
    """The baselines for a seed; content-knn only where items have content tokens."""
    factories = {
        "most-popular": lambda _: baselines.MostPopular(),
        "item-knn": lambda neighbours: baselines.ItemKNN(neighbours=neighbours),
        "ease": lambda l2: baselines.EASE(l2=l2),
    }
    if baselines.IALS_AVAILABLE:
        factories["ials"] = lambda params: baselines.IALS(**params, seed=seed)
    if content is not None and content.nnz:
        factories[baselines.CONTENT_KNN] = lambda _: baselines.ContentKNN(content)
    return factories


@dataclasses.dataclass
class SeedResults:
    """One seed's numbers: per method, per diversity setting, and the stored-history rows."""

    methods: Dict[str, Dict[str, Any]]  # method -> METRICS, "recall_curve" and details
    diversity: Dict[str, Dict[str, float]]  # setting label -> METRICS via `recommend`
    history: Dict[str, Dict[str, float]]  # WITH_HISTORY / USER_ID_ALONE -> accuracy metrics


def diversity_label(diversity: float) -> str:
    """The key of a diversity setting in results ("0", "0.1", ...)."""
    return f"{diversity:g}"


def _two_tower(two_tower: ServedTwoTower, matrices: SplitMatrices,
               evaluation: EvaluationSet, log: Callable[[str], None]) -> Dict[str, Any]:
    started = time.perf_counter()
    test = matrices.queries[TEST_SPLIT]
    scores = two_tower.scores(test, len(matrices.users))
    result = _evaluate(scores[evaluation.users], evaluation)
    result["seconds"] = time.perf_counter() - started
    # The same measure on the eval split (train items excluded): what a hyperparameter
    # search of the two-tower model should compare, keeping test untouched.
    eval_users = np.flatnonzero((np.diff(matrices.eval.indptr) > 0)
                                & (np.diff(matrices.train.indptr) > 0))
    del scores  # [U, I]: one at a time
    eval_scores = two_tower.scores(matrices.queries[EVAL_SPLIT], len(matrices.users))
    top = ranking_metrics.top_k(eval_scores[eval_users], matrices.train[eval_users], CUTOFF)
    result["validation_recall"] = ranking_metrics.ranking_metrics(
        top, matrices.eval[eval_users], k=CUTOFF)["recall@10"]
    log(f"  {TWO_TOWER:<13} recall@10 {result['recall@10']:.4f}{_cold_note(result)}  (eval "
        f"split: {result['validation_recall']:.4f})")
    return result


def _baselines(matrices: SplitMatrices, evaluation: EvaluationSet, seed: int,
               log: Callable[[str], None]) -> Dict[str, Dict[str, Any]]:
    results = {}
    for name, factory in _baseline_factories(seed, matrices.content).items():
        started = time.perf_counter()
        grid = baselines.DEFAULT_GRIDS.get(name, [None])
        best, validation = baselines.tune(factory, grid, matrices.train, matrices.eval)
        model = factory(best).fit(matrices.train)
        results[name] = _evaluate(model.scores(evaluation.users), evaluation)
        results[name].update(seconds=time.perf_counter() - started, tuned=best,
                             validation_recall={str(k): v for k, v in validation.items()})
        log(f"  {name:<13} recall@10 {results[name]['recall@10']:.4f}"
            + _cold_note(results[name]) + (f"  (tuned: {best})" if len(grid) > 1 else ""))
    return results


def _cold_note(result: Dict[str, Any]) -> str:
    """A log line's cold Recall@10 (e.g. ", cold 0.0571"); empty without cold items."""
    cold = result.get("cold recall@10")
    return "" if cold is None else f", cold {cold:.4f}"


def _diversity_sweep(two_tower: ServedTwoTower, matrices: SplitMatrices,
                     evaluation: EvaluationSet, diversities: Sequence[float], seed: int,
                     full_sort_recall: float,
                     log: Callable[[str], None]) -> Dict[str, Dict[str, float]]:
    queries = _queries_for(matrices.queries[TEST_SPLIT], evaluation.users)
    exclude = evaluation.seen[evaluation.users]
    sweep = {}
    for diversity in diversities:
        label = diversity_label(diversity)
        top = two_tower.recommend(queries, exclude, diversity, seed)
        sweep[label] = evaluation.measure(top)
        if diversity == 0:
            sweep[label][FULL_SORT_GAP] = sweep[label]["recall@10"] - full_sort_recall
        log(f"  recommend, diversity {label:<4} recall@10 {sweep[label]['recall@10']:.4f}  "
            f"ILD@10 {sweep[label].get('ild@10', float('nan')):.4f}")
    return sweep


def _stored_history(two_tower: ServedTwoTower, matrices: SplitMatrices,
                    evaluation: EvaluationSet, with_history: Dict[str, Any],
                    log: Callable[[str], None]) -> Dict[str, Dict[str, float]]:
    """The two-tower's accuracy with and without the queries' recent tracks."""
    queries = _without_history(matrices.queries[TEST_SPLIT])
    scores = two_tower.scores(queries, len(matrices.users))[evaluation.users]
    top = ranking_metrics.top_k(scores, evaluation.seen[evaluation.users], CUTOFF)
    alone = ranking_metrics.ranking_metrics(top, evaluation.relevant[evaluation.users],
                                            k=CUTOFF)
    rows = {WITH_HISTORY: {m: with_history[m] for m in ACCURACY_METRICS}, USER_ID_ALONE: alone}
    log(f"  two-tower, user id alone: recall@10 {alone['recall@10']:.4f} "
        f"({_history_ratio(rows):.3f} of user id + history)")
    return rows


def _history_ratio(rows: Dict[str, Dict[str, float]]) -> float:
    with_history = rows[WITH_HISTORY]["recall@10"]
    return rows[USER_ID_ALONE]["recall@10"] / with_history if with_history else float("nan")


def evaluate_seed(matrices: SplitMatrices, model_dir: str, seed: int,
                  diversities: Sequence[float] = DEFAULT_DIVERSITIES,
                  log: Callable[[str], None] = print) -> SeedResults:
    """Test metrics of the two-tower model and every baseline on one seed's splits, the
    two-tower's `recommend` at each diversity, and its stored-history rows."""
    evaluation = EvaluationSet.of(matrices)
    two_tower = ServedTwoTower(model_dir, matrices.items)
    methods = {TWO_TOWER: _two_tower(two_tower, matrices, evaluation, log)}
    methods.update(_baselines(matrices, evaluation, seed, log))
    for result in methods.values():
        result["users"] = int(len(evaluation.users))
    sweep = _diversity_sweep(two_tower, matrices, evaluation, diversities, seed,
                             methods[TWO_TOWER]["recall@10"], log)
    history = _stored_history(two_tower, matrices, evaluation, methods[TWO_TOWER], log)
    return SeedResults(methods=methods, diversity=sweep, history=history)


@dataclasses.dataclass
class BenchmarkResult:
    """Aggregated results: per method, each metric as {"mean", "per_seed"}; likewise per
    diversity setting (`diversity`) and per stored-history row (`stored_history`, with
    HISTORY_RATIO)."""

    dataset: str
    split: str
    seeds: List[int]
    methods: Dict[str, Dict[str, Dict[str, Any]]]
    curves: Dict[str, List[float]]
    details: Dict[str, Any]
    diversity: Dict[str, Dict[str, Dict[str, Any]]] = dataclasses.field(default_factory=dict)
    stored_history: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        return {method: {metric: values for metric, values in metrics.items()}
                for method, metrics in self.methods.items()}


def _mean_and_seeds(per_seed: List[Dict[str, Dict[str, Any]]], rows: Sequence[str],
                    metrics: Sequence[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{row: {metric: {"mean", "per_seed"}}} over seeds, for the rows every seed has and, per
    row, the metrics every seed has (ILD is absent without content features)."""
    rows = [row for row in rows if all(row in seed for seed in per_seed)]
    return {row: {metric: {"mean": float(np.mean([s[row][metric] for s in per_seed])),
                           "per_seed": [float(s[row][metric]) for s in per_seed]}
                  for metric in metrics if all(metric in s[row] for s in per_seed)}
            for row in rows}


def aggregate(per_seed: List[Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{method: {metric: {"mean", "per_seed"}}} over seeds, methods in METHODS order."""
    return _mean_and_seeds(per_seed, METHODS, METRICS + COLD_METRICS)


def aggregate_diversity(per_seed: List[Dict[str, Dict[str, float]]]
                        ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{setting: {metric: {"mean", "per_seed"}}}, settings in the order first requested."""
    return _mean_and_seeds(per_seed, list(per_seed[0]) if per_seed else [],
                           METRICS + (FULL_SORT_GAP,))


def aggregate_history(per_seed: List[Dict[str, Dict[str, float]]]) -> Dict[str, Any]:
    """{WITH_HISTORY / USER_ID_ALONE: {metric: {...}}, HISTORY_RATIO: {"mean", "per_seed",
    "target"}}; the ratio is per seed (alone / with history), then averaged."""
    rows: Dict[str, Any] = _mean_and_seeds(per_seed, (WITH_HISTORY, USER_ID_ALONE),
                                           ACCURACY_METRICS)
    ratios = [_history_ratio(seed) for seed in per_seed]
    rows[HISTORY_RATIO] = {"mean": float(np.mean(ratios)), "per_seed": ratios,
                           "target": HISTORY_RATIO_TARGET}
    return rows


def _check_diversities(diversities: Sequence[float]) -> List[float]:
    values = [float(value) for value in diversities]
    if not values or any(not 0.0 <= value <= 1.0 for value in values):
        raise ValueError(f"diversity settings must be in [0, 1], got {list(diversities)}")
    if len({diversity_label(value) for value in values}) != len(values):
        raise ValueError(f"diversity settings repeat: {list(diversities)}")
    return values


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """The data a benchmark trains on: the folder, the split protocol (seed 0) and the
    dataset's hyperparameters."""

    folder: str
    protocol: Any  # split_protocols.SplitProtocol
    hyperparameters: Any  # hyperparameters.Hyperparameters
    import_details: Dict[str, Any]
    # Further PipelineConfig settings of every seed's run, e.g. {"tune": True,
    # "tune_trials": 10}: the Tuner then picks the two-tower's hyperparameters per seed on
    # that seed's eval split (test untouched).
    pipeline_settings: Dict[str, Any] = dataclasses.field(default_factory=dict)


def prepare(dataset: str, data_dir: str, out_dir: str, split: Optional[str] = None,
            max_users: Optional[int] = None,
            hyperparameter_overrides: Optional[Dict[str, Any]] = None, eval_days: int = 7,
            log: Callable[[str], None] = print, cold_items: float = 0.0) -> PreparedData:
    """Imports `data_dir` under `out_dir` (a simulated folder is read in place) and chooses
    the split protocol (time splits get a test period after eval; `cold_items` of the items
    are test-only, split_protocols.cold_item_rows) and hyperparameters."""
    from crossfade.components.example_gen.split_protocols import AUTO, TIME, SplitProtocol
    from crossfade.components.listening_data import importers, sources
    from crossfade.pipeline import configs

    os.makedirs(out_dir, exist_ok=True)
    if dataset == SIMULATED:
        imported, import_details = _simulated_folder(data_dir, max_users), {"format": SIMULATED}
        log(f"Using the simulated data in {data_dir} as it is")
    else:
        imported = os.path.join(out_dir, "data")
        summary = importers.import_dataset(dataset, data_dir, imported)
        import_details = _import_details(dataclasses.asdict(summary))
        log(f"Imported {dataset} from {data_dir}: {summary.users:,} users, "
            f"{summary.items:,} items, {summary.interactions:,} interactions")
    if max_users:
        imported = _first_users(imported, os.path.join(out_dir, f"data-{max_users}-users"),
                                max_users)
        log(f"Using the first {max_users} users only ({imported})")
    layout = sources.detect_layout(imported)
    base_protocol = SplitProtocol(name=split or AUTO, eval_days=eval_days)
    base_protocol = base_protocol.resolve(sources.has_timestamps(imported, layout))
    if base_protocol.name == TIME:  # the benchmark needs a test period after eval
        base_protocol = dataclasses.replace(base_protocol, test_days=eval_days)
    base_protocol = dataclasses.replace(base_protocol, cold_items=cold_items)
    hyperparameters = configs.hyperparameters_for_data(imported, dataset,
                                                       hyperparameter_overrides)
    return PreparedData(imported, base_protocol, hyperparameters, import_details)


def run(dataset: str, data_dir: str, out_dir: str, split: Optional[str] = None,
        seeds: int = 3, json_path: Optional[str] = None, max_users: Optional[int] = None,
        hyperparameter_overrides: Optional[Dict[str, Any]] = None, eval_days: int = 7,
        diversities: Sequence[float] = DEFAULT_DIVERSITIES,
        log: Callable[[str], None] = print, cold_items: float = 0.0,
        pipeline_settings: Optional[Dict[str, Any]] = None) -> BenchmarkResult:
    """Imports `data_dir`, runs the pipeline and every method for `seeds` seeds, writes
    `out_dir`/{results.json, quality.md, recall_at_k.png, diversity_tradeoff.png} (and
    `json_path`). `diversities`: the `recommend` settings in [0, 1] to sweep; `cold_items`:
    the share of items held out of train and eval (their cold/warm recall is reported);
    `pipeline_settings`: `PreparedData.pipeline_settings` (e.g. the Tuner's)."""
    diversities = _check_diversities(diversities)  # before minutes of import and training
    data = prepare(dataset, data_dir, out_dir, split, max_users, hyperparameter_overrides,
                   eval_days, log, cold_items)
    data = dataclasses.replace(data, pipeline_settings=dict(pipeline_settings or {}))
    base_protocol, hyperparameters = data.protocol, data.hyperparameters
    per_seed, tuning = [], []
    for seed in range(seeds):
        matrices, model_dir, pipeline_run = train_seed(data, out_dir, seed, log)
        tuning.append(pipeline_run.tuning)
        per_seed.append(evaluate_seed(matrices, model_dir, seed, diversities, log))
    methods = aggregate([seed.methods for seed in per_seed])
    curves = {m: np.mean([seed.methods[m]["recall_curve"] for seed in per_seed],
                         axis=0).tolist() for m in methods}
    result = BenchmarkResult(
        dataset=dataset, split=base_protocol.describe(with_seed=False),
        seeds=list(range(seeds)), methods=methods, curves=curves,
        details={"hyperparameters": dataclasses.asdict(hyperparameters),
                 "per_seed_details": [_details(seed.methods) for seed in per_seed],
                 "import": data.import_details,
                 **({"tuning": tuning} if any(tuning) else {})},
        diversity=aggregate_diversity([seed.diversity for seed in per_seed]),
        stored_history=aggregate_history([seed.history for seed in per_seed]))
    _write(result, out_dir, json_path)
    return result


def train_seed(data: PreparedData, out_dir: str, seed: int,
               log: Callable[[str], None]) -> "tuple[SplitMatrices, str, Any]":
    """Runs the pipeline for one seed's split into `out_dir`/seed-N: the split matrices it
    produced, the Trainer's SavedModel folder and the run's summary (run_summary.RunSummary,
    with the Tuner's search when `data.pipeline_settings` tune)."""
    from crossfade.pipeline import configs, local_runner
    protocol = dataclasses.replace(data.protocol, seed=seed)
    config = configs.PipelineConfig(
        data_dir=os.path.abspath(data.folder),
        output_dir=os.path.abspath(os.path.join(out_dir, f"seed-{seed}")),
        split=protocol, hyperparameters=dataclasses.replace(data.hyperparameters, seed=seed),
        **data.pipeline_settings)
    log(f"Seed {seed}: {protocol.describe()}; running the pipeline"
        + (f" with the Tuner ({config.tune_trials} trials)" if config.tune else ""))
    started = time.perf_counter()
    local_runner.run(config)
    run = run_summary.latest_run(config)
    log(f"  pipeline finished in {time.perf_counter() - started:.0f} s; Evaluator "
        f"recall@10 on eval (unfiltered ranking) {run.metrics.get('recall@10', 0):.4f}")
    if run.tuning:
        log(f"  Tuner: trial {run.tuning['best_trial_id']} won, "
            f"{run.tuning['objective']} {run.tuning['best_score']:.4f} on eval: "
            f"{run_summary.format_values(run.tuning['best_values'])}")
    model_dir = path_utils.serving_model_dir(run.artifact_uris["CatalogueTrainer/Model"])
    matrices = split_matrices(run.artifact_uris["StreamQualifier/Examples"],
                              run.artifact_uris["CatalogueExampleGen/Examples"])
    return matrices, model_dir, run



def _simulated_folder(data_dir: str, max_users: Optional[int]) -> str:
    """`data_dir` if it holds `crossfade generate` output (read in place, never written)."""
    from crossfade.components.listening_data import layout, sources
    if sources.detect_layout(data_dir) != layout.SIMULATOR:
        raise ValueError(f"--dataset {SIMULATED} needs a folder written by `crossfade "
                         f"generate`; {data_dir} is not one")
    if max_users:
        raise ValueError(f"--max-users needs an imported dataset, not --dataset {SIMULATED}")
    return os.path.abspath(data_dir)


def _import_details(summary: Dict[str, Any]) -> Dict[str, Any]:
    """The import summary for results.json, without the pseudonym key's path: results are
    shared, and where the key lives is not theirs to tell."""
    return {name: value for name, value in summary.items() if name != "pseudonym_key"}


def _details(methods: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Per method, what is not a metric (tuning, timings, users), for results.json."""
    return {m: {k: v for k, v in r.items() if k not in METRICS and k != "recall_curve"}
            for m, r in methods.items()}


def _first_users(imported: str, out: str, max_users: int) -> str:
    """A generic-layout copy of `imported` holding only its first `max_users` users."""
    from crossfade.components.listening_data import layout, sources
    if sources.detect_layout(imported) != layout.GENERIC:
        raise ValueError("--max-users needs a dataset imported to the generic layout")
    interactions = pd.read_csv(os.path.join(imported, layout.INTERACTIONS_FILE), dtype=str,
                               keep_default_na=False)
    keep = sorted(interactions["user_id"].unique(), key=lambda u: (len(u), u))[:max_users]
    interactions = interactions[interactions["user_id"].isin(keep)]
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    interactions.to_csv(os.path.join(out, layout.INTERACTIONS_FILE), index=False)
    items_path = os.path.join(imported, layout.ITEMS_FILE)
    if os.path.exists(items_path):
        items = pd.read_csv(items_path, dtype=str, keep_default_na=False)
        items[items["item_id"].isin(set(interactions["item_id"]))].to_csv(
            os.path.join(out, layout.ITEMS_FILE), index=False)
    return out


def _methods_section(result: BenchmarkResult) -> str:
    hp = result.details["hyperparameters"]
    lines = [f"dataset: {result.dataset}; split: {result.split}; seeds: "
             f"{', '.join(map(str, result.seeds))}",
             "full ranking over the catalogue, train and eval items excluded; users with "
             "test items outside them",
             "ILD@10 on genres and tags, novelty@10 in bits of the training counts, "
             "coverage@10 of the catalogue over all evaluated users' top 10",
             "two-tower: " + ", ".join(f"{k}={v}" for k, v in sorted(hp.items())
                                      if k != "seed")]
    tuned = {m: [d[m].get("tuned") for d in result.details["per_seed_details"]]
             for m in result.methods if m not in (TWO_TOWER, "most-popular")}
    lines += [f"{m} tuned on eval, per seed: " + "; ".join(f"({value})" for value in values)
              for m, values in tuned.items()]
    if result.details.get("tuning"):
        winners = [run_summary.format_values(seed["best_values"])
                   for seed in result.details["tuning"]]
        lines.append("two-tower tuned on eval by the pipeline's Tuner, per seed: "
                     + "; ".join(f"({values})" for values in winners))
    return report.markdown_table(result.methods, title=f"Recommendation quality: "
                                 f"{result.dataset}", details=lines)


def _diversity_section(result: BenchmarkResult) -> str:
    if not result.diversity:
        return ""
    lines = ["two-tower through its `recommend` signature: greedy MMR re-ranking of the top "
             "200 by relevance, explore 0, k = 10, train and eval items sent as exclusions"]
    for label, entries in result.diversity.items():
        if FULL_SORT_GAP in entries:
            gaps = ", ".join(f"{gap:+.4f}" for gap in entries[FULL_SORT_GAP]["per_seed"])
            lines.append(f"diversity {label} vs full-sort scoring: Recall@10 differs by "
                         f"[{gaps}] per seed (0 expected)")
    rows = {f"diversity {label}": entries for label, entries in result.diversity.items()}
    return report.markdown_table(rows, title="Diversity re-ranking (two-tower)",
                                 details=lines, row_header="Setting")


def _history_section(result: BenchmarkResult) -> str:
    if not result.stored_history:
        return ""
    ratio = result.stored_history[HISTORY_RATIO]
    seeds = ", ".join(f"{value:.4f}" for value in ratio["per_seed"])
    lines = ["same test queries; \"user id alone\" sends no recent tracks, so the model "
             "uses the user's training history stored in it",
             f"Recall@10 ratio, user id alone / user id + history: {ratio['mean']:.4f} "
             f"[{seeds}] (target >= {ratio['target']:.2f})"]
    rows = {row: entries for row, entries in result.stored_history.items()
            if row != HISTORY_RATIO}
    return report.markdown_table(rows, title="Stored history (two-tower)", details=lines,
                                 row_header="Query")


def _tradeoff_points(result: BenchmarkResult):
    def point(entries: Dict[str, Dict[str, Any]]):
        return (entries.get("ild@10", {}).get("mean", float("nan")),
                entries["recall@10"]["mean"])
    sweep = {label: point(entries) for label, entries in result.diversity.items()}
    # The full-sort two-tower is the sweep's diversity-0 point: drawn once, on the line.
    references = {method: point(entries) for method, entries in result.methods.items()
                  if not (method == TWO_TOWER and diversity_label(0.0) in sweep)}
    return sweep, references


def _write(result: BenchmarkResult, out_dir: str, json_path: Optional[str]) -> None:
    sections = [_methods_section(result), _diversity_section(result),
                _history_section(result)]
    text = "\n".join(section for section in sections if section)
    with open(os.path.join(out_dir, "quality.md"), "w") as handle:
        handle.write(text + "\n")
    report.plot_recall_curves({m: np.array(c) for m, c in result.curves.items()},
                              os.path.join(out_dir, "recall_at_k.png"),
                              title=f"Recall@K, {result.dataset}, {result.split}")
    if result.diversity:
        sweep, references = _tradeoff_points(result)
        report.plot_diversity_tradeoff(
            sweep, references, os.path.join(out_dir, "diversity_tradeoff.png"),
            title=f"Recall@10 vs ILD@10, {result.dataset}", sweep_label="two-tower, diversity")
    payload = {**result.to_json(),
               "_diversity": result.diversity,
               "_stored_history": result.stored_history,
               "_meta": {"dataset": result.dataset, "split": result.split,
                         "seeds": result.seeds, "details": result.details,
                         "recall_curves": result.curves}}
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump(payload, handle, indent=1, default=str)
    if json_path:  # exactly {method: {metric: {"mean", "per_seed"}}}
        with open(json_path, "w") as handle:
            json.dump(result.to_json(), handle, indent=1)
    print(text)
