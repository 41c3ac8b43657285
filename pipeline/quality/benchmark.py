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

Ranking is full (every catalogue item) and excludes what the user has in train and eval; a
user's relevant items are their test items outside that set, and users with none, or with
no train items, are left out (as in RecBole's full-sort evaluation). Metrics
(pipeline/quality/ranking_metrics.py): Recall@10, NDCG@10, Hit@10, and Recall@K for K = 1..100.
"""
import dataclasses
import glob
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tfx.utils import path_utils

from crossfade.components.example_gen.listening_example_gen import CATALOGUE_SPLIT
from crossfade.components.example_gen.split_protocols import (
    EVAL_SPLIT,
    SPLIT_NAMES,
    TEST_SPLIT,
    TRAIN_SPLIT,
)
from crossfade.pipeline.quality import baselines, ranking_metrics, report
from crossfade.serving import signatures

TWO_TOWER = "two-tower"
METHODS = (TWO_TOWER, "most-popular", "item-knn", "ease", "ials")
METRICS = ("recall@10", "ndcg@10", "hit@10")
CURVE_MAX_K = 100
_QUERY_BATCH = 1024


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
                               [features.TRACK_ID])[features.TRACK_ID]
    query_names = [features.USER_ID, features.TRACK_ID, features.TIMESTAMP,
                   features.RECENT_TRACK_IDS, features.PLATFORM]
    splits = {split: _read_examples(_split_files(examples_uri, split),
                                    query_names if split != TRAIN_SPLIT
                                    else [features.USER_ID, features.TRACK_ID])
              for split in SPLIT_NAMES}
    users = np.array(sorted(set(splits[TRAIN_SPLIT][features.USER_ID])), dtype=object)
    user_index, item_index = pd.Index(users), pd.Index(catalogue)
    shape = (len(users), len(catalogue))
    matrices = {split: _matrix(user_index.get_indexer(values[features.USER_ID]),
                               item_index.get_indexer(values[features.TRACK_ID]), shape)
                for split, values in splits.items()}
    queries = {split: _first_play_queries(splits[split], user_index)
               for split in (EVAL_SPLIT, TEST_SPLIT)}
    return SplitMatrices(users=users, items=catalogue, train=matrices[TRAIN_SPLIT],
                         eval=matrices[EVAL_SPLIT], test=matrices[TEST_SPLIT], queries=queries)


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


def two_tower_scores(model_dir: str, matrices: SplitMatrices, split: str) -> np.ndarray:
    """[U, I] cosine scores of the exported model for the users' queries in `split` (rows of
    users without a query there are 0)."""
    import tensorflow as tf
    model = tf.saved_model.load(model_dir)
    candidate = model.signatures[signatures.CANDIDATE_EMBEDDING]
    query = model.signatures[signatures.QUERY_EMBEDDING]
    item_embeddings = np.concatenate([
        candidate(track_id=tf.constant(matrices.items[start:start + 8192]))["embedding"].numpy()
        for start in range(0, len(matrices.items), 8192)])
    scores = np.zeros((len(matrices.users), len(matrices.items)), np.float32)
    q = matrices.queries[split]
    for start in range(0, len(q["row"]), _QUERY_BATCH):
        window = slice(start, start + _QUERY_BATCH)
        embedding = query(user_id=tf.constant(q["user_id"][window]),
                          recent_track_ids=tf.constant(q["recent_track_ids"][window]),
                          timestamp=tf.constant(q["ts"][window]),
                          platform=tf.constant(q["platform"][window]))["embedding"].numpy()
        scores[q["row"][window]] = embedding @ item_embeddings.T
    return scores


def _evaluate(scores: np.ndarray, exclude: sp.csr_matrix, relevant: sp.csr_matrix,
              users: np.ndarray) -> Dict[str, Any]:
    top = ranking_metrics.top_k(scores, exclude[users], CURVE_MAX_K)
    result = dict(ranking_metrics.ranking_metrics(top, relevant[users], k=10))
    result["recall_curve"] = ranking_metrics.recall_curve(top, relevant[users], CURVE_MAX_K)
    return result


def _baseline_factories(seed: int) -> Dict[str, Callable[[Any], baselines.Recommender]]:
    factories = {
        "most-popular": lambda _: baselines.MostPopular(),
        "item-knn": lambda neighbours: baselines.ItemKNN(neighbours=neighbours),
        "ease": lambda l2: baselines.EASE(l2=l2),
    }
    if baselines.IALS_AVAILABLE:
        factories["ials"] = lambda params: baselines.IALS(**params, seed=seed)
    return factories


def evaluate_seed(matrices: SplitMatrices, model_dir: str, seed: int,
                  log: Callable[[str], None] = print) -> Dict[str, Dict[str, Any]]:
    """Test metrics of the two-tower model and every baseline on one seed's splits."""
    seen = (matrices.train + matrices.eval).tocsr()
    seen.data[:] = 1.0
    relevant = matrices.test - matrices.test.multiply(seen)
    relevant.eliminate_zeros()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0)
                           & (np.diff(matrices.train.indptr) > 0))
    results: Dict[str, Dict[str, Any]] = {}
    started = time.perf_counter()
    scores = two_tower_scores(model_dir, matrices, TEST_SPLIT)
    results[TWO_TOWER] = _evaluate(scores[users], seen, relevant, users)
    results[TWO_TOWER]["seconds"] = time.perf_counter() - started
    # The same measure on the eval split (train items excluded): what a hyperparameter
    # search of the two-tower model should compare, keeping test untouched.
    eval_users = np.flatnonzero((np.diff(matrices.eval.indptr) > 0)
                                & (np.diff(matrices.train.indptr) > 0))
    eval_scores = two_tower_scores(model_dir, matrices, EVAL_SPLIT)[eval_users]
    top = ranking_metrics.top_k(eval_scores, matrices.train[eval_users], 10)
    results[TWO_TOWER]["validation_recall"] = ranking_metrics.ranking_metrics(
        top, matrices.eval[eval_users], k=10)["recall@10"]
    log(f"  {TWO_TOWER:<13} recall@10 {results[TWO_TOWER]['recall@10']:.4f}  (eval split: "
        f"{results[TWO_TOWER]['validation_recall']:.4f})")
    for name, factory in _baseline_factories(seed).items():
        started = time.perf_counter()
        grid = baselines.DEFAULT_GRIDS.get(name, [None])
        best, validation = baselines.tune(factory, grid, matrices.train, matrices.eval)
        model = factory(best).fit(matrices.train)
        results[name] = _evaluate(model.scores(users), seen, relevant, users)
        results[name].update(seconds=time.perf_counter() - started, tuned=best,
                             validation_recall={str(k): v for k, v in validation.items()})
        log(f"  {name:<13} recall@10 {results[name]['recall@10']:.4f}"
            + (f"  (tuned: {best})" if len(grid) > 1 else ""))
    for result in results.values():
        result["users"] = int(len(users))
    return results


@dataclasses.dataclass
class BenchmarkResult:
    """Aggregated results: per method, each metric as {"mean", "per_seed"}."""

    dataset: str
    split: str
    seeds: List[int]
    methods: Dict[str, Dict[str, Dict[str, Any]]]
    curves: Dict[str, List[float]]
    details: Dict[str, Any]

    def to_json(self) -> Dict[str, Any]:
        return {method: {metric: values for metric, values in metrics.items()}
                for method, metrics in self.methods.items()}


def aggregate(per_seed: List[Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{method: {metric: {"mean", "per_seed"}}} over seeds, methods in METHODS order."""
    methods = [m for m in METHODS if all(m in seed for seed in per_seed)]
    return {method: {metric: {"mean": float(np.mean([s[method][metric] for s in per_seed])),
                              "per_seed": [float(s[method][metric]) for s in per_seed]}
                     for metric in METRICS}
            for method in methods}


def run(dataset: str, data_dir: str, out_dir: str, split: Optional[str] = None,
        seeds: int = 3, json_path: Optional[str] = None, max_users: Optional[int] = None,
        hyperparameter_overrides: Optional[Dict[str, Any]] = None, eval_days: int = 7,
        log: Callable[[str], None] = print) -> BenchmarkResult:
    """Imports `data_dir`, runs the pipeline and every method for `seeds` seeds, writes
    `out_dir`/{results.json, quality.md, recall_at_k.png} (and `json_path`)."""
    from crossfade.components.example_gen.split_protocols import AUTO, TIME, SplitProtocol
    from crossfade.components.listening_data import importers, sources
    from crossfade.pipeline import configs, local_runner, run_summary

    os.makedirs(out_dir, exist_ok=True)
    imported = os.path.join(out_dir, "data")
    summary = importers.import_dataset(dataset, data_dir, imported)
    log(f"Imported {dataset} from {data_dir}: {summary.users:,} users, {summary.items:,} "
        f"items, {summary.interactions:,} interactions")
    if max_users:
        imported = _first_users(imported, os.path.join(out_dir, f"data-{max_users}-users"),
                                max_users)
        log(f"Using the first {max_users} users only ({imported})")
    layout = sources.detect_layout(imported)
    base_protocol = SplitProtocol(name=split or AUTO, eval_days=eval_days)
    base_protocol = base_protocol.resolve(sources.has_timestamps(imported, layout))
    if base_protocol.name == TIME:  # the benchmark needs a test period after eval
        base_protocol = dataclasses.replace(base_protocol, test_days=eval_days)
    hyperparameters = configs.hyperparameters_for_data(imported, dataset,
                                                       hyperparameter_overrides)

    per_seed, curves_per_seed, validation = [], [], []
    for seed in range(seeds):
        protocol = dataclasses.replace(base_protocol, seed=seed)
        config = configs.PipelineConfig(
            data_dir=os.path.abspath(imported),
            output_dir=os.path.abspath(os.path.join(out_dir, f"seed-{seed}")),
            split=protocol, hyperparameters=dataclasses.replace(hyperparameters, seed=seed))
        log(f"Seed {seed}: {protocol.describe()}; running the pipeline")
        started = time.perf_counter()
        local_runner.run(config)
        run = run_summary.latest_run(config)
        log(f"  pipeline finished in {time.perf_counter() - started:.0f} s; Evaluator "
            f"recall@10 on eval (unfiltered ranking) {run.metrics.get('recall@10', 0):.4f}")
        model_dir = path_utils.serving_model_dir(run.artifact_uris["CatalogueTrainer/Model"])
        matrices = split_matrices(run.artifact_uris["StreamQualifier/Examples"],
                                  run.artifact_uris["CatalogueExampleGen/Examples"])
        results = evaluate_seed(matrices, model_dir, seed, log)
        per_seed.append(results)
        curves_per_seed.append({m: r.pop("recall_curve") for m, r in results.items()})
        validation.append({m: {k: v for k, v in r.items() if k not in METRICS}
                           for m, r in results.items()})

    methods = aggregate(per_seed)
    curves = {m: np.mean([c[m] for c in curves_per_seed], axis=0).tolist() for m in methods}
    result = BenchmarkResult(
        dataset=dataset, split=base_protocol.describe(with_seed=False),
        seeds=list(range(seeds)), methods=methods, curves=curves,
        details={"hyperparameters": dataclasses.asdict(hyperparameters),
                 "per_seed_details": validation, "import": dataclasses.asdict(summary)})
    _write(result, out_dir, json_path)
    return result


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


def _write(result: BenchmarkResult, out_dir: str, json_path: Optional[str]) -> None:
    hp = result.details["hyperparameters"]
    lines = [f"dataset: {result.dataset}; split: {result.split}; seeds: "
             f"{', '.join(map(str, result.seeds))}",
             "full ranking over the catalogue, train and eval items excluded; users with "
             "test items outside them",
             "two-tower: " + ", ".join(f"{k}={v}" for k, v in sorted(hp.items())
                                      if k != "seed")]
    tuned = {m: [d[m].get("tuned") for d in result.details["per_seed_details"]]
             for m in result.methods if m not in (TWO_TOWER, "most-popular")}
    lines += [f"{m} tuned on eval, per seed: " + "; ".join(f"({value})" for value in values)
              for m, values in tuned.items()]
    table = report.markdown_table(result.methods, title=f"Recommendation quality: "
                                  f"{result.dataset}", details=lines)
    with open(os.path.join(out_dir, "quality.md"), "w") as handle:
        handle.write(table + "\n")
    report.plot_recall_curves({m: np.array(c) for m, c in result.curves.items()},
                              os.path.join(out_dir, "recall_at_k.png"),
                              title=f"Recall@K, {result.dataset}, {result.split}")
    payload = {**result.to_json(),
               "_meta": {"dataset": result.dataset, "split": result.split,
                         "seeds": result.seeds, "details": result.details,
                         "recall_curves": result.curves}}
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump(payload, handle, indent=1, default=str)
    if json_path:  # exactly {method: {metric: {"mean", "per_seed"}}}
        with open(json_path, "w") as handle:
            json.dump(result.to_json(), handle, indent=1)
    print(table)
