"""`crossfade benchmark blend`: is one list for two friends fair to each of them?

Per seed the data runs through the real pipeline exactly as in the quality benchmark
(`benchmark.prepare`, `benchmark.train_seed`: the same import, split and hyperparameters).
Then, on the Trainer's SavedModel through the signatures TF Serving serves:

* **pairs**: every friend pair of the data's ``friends.csv`` (Last.fm's ``user_friends.dat``
  as imported, or the simulator's friend groups) whose two members both have training plays
  and test items, and as a control as many pairs of users drawn at random from the same users
  (seeded); a pair counts once whichever way round it is listed.
* **exclusions**: the union of both members' train and eval items, the same for the solo and
  the blended lists, so that a member's test items outside that union (their *relevant*
  items) are reachable in both, and the comparison is like for like.
* **solo lists**: each member's `recommend` (no re-ranking) with their first test play's query
  (as the quality benchmark asks) and the pair's exclusions, `k` tracks.
* **blended lists**: the `blend` signature with both members' queries, per strategy.

Per strategy and pair kind, means over pairs:

* ``recall ratio``: the members' mean Recall@k on the blend over their mean solo Recall@k;
* ``worst-member ratio``: per pair whose members both have a solo hit, the smaller of the two
  members' blend / solo Recall@k;
* ``share gap`` (points), pooled over pairs: each pair's members are cast as the more and the
  less mainstream listener (the mean training popularity of their items, `mainstreamness`),
  since the more mainstream taste is the one an average tends to favour. Each role keeps
  ``kept = Σ blend hits / Σ solo hits`` of its own hits; the roles' shares of what is kept,
  ``kept_role / (kept_more + kept_less)``, differ by the gap, 100 · |kept_more − kept_less| /
  (kept_more + kept_less): 0 when neither kind of member is systematically favoured;
  Pooling matters: a pair has one to a few hits in 20 tracks, so per pair one member often
  has all of them whatever the strategy;
* ``mainstream lead`` (points): the share gap without the absolute value, positive when the
  more mainstream members are the favoured ones;
* ``per-pair gap`` (points), for comparison: per pair with a hit on the blend,
  100 · |hits a − hits b| / (hits a + hits b), dominated by that sparsity;
* ``coherence``: 1 − intra-list diversity of the blend on the catalogue's genres and tags
  (`list_metrics`), how alike its tracks are.

On simulator data it also has simulated listeners stream each member's solo list and each
strategy's blend (`blend_simulation`: stream rates, long-term effects on and off).

Outputs: results.json ({kind: {strategy: {metric: {"mean", "per_seed"}}}}, pair counts; on
simulator data also "simulation": {effects: {arm: {metric: ...}}}) and blend.md.
"""
import dataclasses
import json
import os
from typing import Callable, Dict, List, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossfade.components.evaluator import list_metrics
from crossfade.components.example_gen.split_protocols import TEST_SPLIT
from crossfade.pipeline.quality import SIMULATED, benchmark, blend_simulation
from crossfade.serving import signatures

FRIENDS, RANDOM_PAIRS = "friend pairs", "random pairs"
METRICS = ("recall ratio", "worst-member ratio", "share gap", "mainstream lead", "per-pair gap",
           "coherence")
DEFAULT_K = 20


@dataclasses.dataclass(frozen=True)
class PairLists:
    """For P pairs: each member's solo list and the blended lists, as catalogue rows
    ([P, 2, k] and {strategy: [P, k]}; `ranking_metrics.PAD` past the end)."""

    solo: np.ndarray
    blended: Dict[str, np.ndarray]


def friend_pairs(folder: str, users: np.ndarray) -> np.ndarray:
    """[P, 2] user rows (smaller row first, each pair once) of the friendships in
    `folder`/friends.csv between users of `users` (the split matrices' rows)."""
    from crossfade.components.listening_data.layout import FRIEND_COLUMNS, FRIENDS_FILE
    path = os.path.join(folder, FRIENDS_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist: the blend benchmark needs friend pairs")
    friends = pd.read_csv(path, dtype=str, keep_default_na=False)
    # The matrices' ids come from tf.Examples, as bytes.
    index = pd.Index([u.decode() if isinstance(u, bytes) else u for u in users])
    rows = np.stack([index.get_indexer(friends[name]) for name in FRIEND_COLUMNS], axis=1)
    rows = rows[(rows >= 0).all(axis=1) & (rows[:, 0] != rows[:, 1])]
    return np.unique(np.sort(rows, axis=1), axis=0)


def eligible(pairs: np.ndarray, seen: sp.csr_matrix, test: sp.csr_matrix,
             train: sp.csr_matrix) -> np.ndarray:
    """The pairs whose members both have training plays and a test item outside the pair's
    union of seen items."""
    keep = []
    for a, b in pairs:
        union = set(seen.indices[seen.indptr[a]:seen.indptr[a + 1]]) | set(
            seen.indices[seen.indptr[b]:seen.indptr[b + 1]])
        ok = all(train.indptr[u + 1] > train.indptr[u] and
                 set(test.indices[test.indptr[u]:test.indptr[u + 1]]) - union for u in (a, b))
        keep.append(ok)
    return pairs[np.array(keep, bool)] if len(pairs) else pairs


def random_pairs(candidates: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` distinct random pairs of distinct `candidates` rows (seeded)."""
    rng = np.random.default_rng(seed)
    found: set = set()
    while len(found) < min(count, len(candidates) * (len(candidates) - 1) // 2):
        a, b = rng.choice(candidates, 2, replace=False)
        found.add((min(a, b), max(a, b)))
    return np.array(sorted(found), dtype=np.int64).reshape(-1, 2)


def pair_union(pairs: np.ndarray, seen: sp.csr_matrix) -> sp.csr_matrix:
    """[P, I] the union of both members' seen items, per pair."""
    union = (seen[pairs[:, 0]] + seen[pairs[:, 1]]).tocsr()
    union.data[:] = 1.0
    return union


def mainstreamness(train: sp.csr_matrix) -> np.ndarray:
    """[U] each user's mean item popularity (training users per item) over their training
    items; 0 for a user without any."""
    played = (train > 0).astype(float).tocsr()
    popularity = np.asarray(played.sum(axis=0)).ravel()
    counts = np.asarray(played.sum(axis=1)).ravel()
    return played @ popularity / np.maximum(counts, 1)


def mainstream_lead(blend_hits: np.ndarray, solo_hits: np.ndarray, more: np.ndarray) -> float:
    """The pooled share gap with its sign (points; see the module docstring) of [P, 2] hit
    counts, with `more` [P] True where member 0 is the more mainstream: positive when the
    more mainstream members keep more of their hits; NaN without solo hits."""
    rows = np.arange(len(more))
    lead, other = np.where(more, 0, 1), np.where(more, 1, 0)
    solo = np.array([solo_hits[rows, lead].sum(), solo_hits[rows, other].sum()])
    if (solo == 0).any():
        return float("nan")
    kept = np.array([blend_hits[rows, lead].sum(), blend_hits[rows, other].sum()]) / solo
    return float(100 * (kept[0] - kept[1]) / kept.sum()) if kept.sum() else float("nan")


def pair_metrics(lists: np.ndarray, solo: np.ndarray, relevant_a: sp.csr_matrix,
                 relevant_b: sp.csr_matrix, more: np.ndarray,
                 content: "sp.csr_matrix | None", k: int) -> Dict[str, float]:
    """`METRICS` of blended `lists` [P, k] against the members' `solo` [P, 2, k] lists, with
    each member's relevant items per pair (`relevant_a`, `relevant_b`: [P, I]) and `more`
    [P] True where member a is the more mainstream."""
    def hits(top: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
        return np.array([len(set(row[row >= 0]) & set(
            relevant.indices[relevant.indptr[p]:relevant.indptr[p + 1]]))
            for p, row in enumerate(top)], dtype=float)

    sizes = [np.diff(relevant.indptr).astype(float) for relevant in (relevant_a, relevant_b)]
    blend_hits = [hits(lists, relevant_a), hits(lists, relevant_b)]
    solo_hits = [hits(solo[:, 0], relevant_a), hits(solo[:, 1], relevant_b)]
    blend_recall = np.stack([h / s for h, s in zip(blend_hits, sizes, strict=True)], axis=1)
    solo_recall = np.stack([h / s for h, s in zip(solo_hits, sizes, strict=True)], axis=1)
    both = (solo_recall > 0).all(axis=1)
    worst = (blend_recall[both] / solo_recall[both]).min(axis=1)
    total = blend_hits[0] + blend_hits[1]
    gap = 100 * np.abs(blend_hits[0] - blend_hits[1])[total > 0] / total[total > 0]
    result = {
        "recall ratio": float(blend_recall.mean() / solo_recall.mean())
        if solo_recall.mean() > 0 else float("nan"),
        "worst-member ratio": float(worst.mean()) if len(worst) else float("nan"),
        "mainstream lead": mainstream_lead(np.stack(blend_hits, axis=1),
                                           np.stack(solo_hits, axis=1), more),
        "per-pair gap": float(gap.mean()) if len(gap) else float("nan"),
    }
    result["share gap"] = abs(result["mainstream lead"])
    if content is not None:
        result["coherence"] = 1.0 - benchmark._mean_defined(
            list_metrics.intra_list_diversity(lists[:, :min(k, lists.shape[1])], content))
    return result


def pair_lists(model: benchmark.ServedTwoTower, matrices: benchmark.SplitMatrices,
               pairs: np.ndarray, union: sp.csr_matrix, k: int) -> PairLists:
    """Solo and blended lists of `pairs` under the pairs' exclusions `union`."""
    queries = matrices.queries[TEST_SPLIT]
    members = [benchmark._queries_for(queries, pairs[:, m]) for m in (0, 1)]
    solo = np.stack([model.recommend(members[m], union, diversity=0.0, seed=0, k=k)
                     for m in (0, 1)], axis=1)
    blended = {strategy: model.blend(members, union, strategy, k)
               for strategy in sorted(signatures.BLEND_STRATEGIES)}
    return PairLists(solo, blended)


def evaluate_seed(matrices: benchmark.SplitMatrices, model_dir: str, folder: str, seed: int,
                  k: int, log: Callable[[str], None]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{pair kind: {strategy: METRICS}} of one seed, and {pair kind: pairs} as "pairs"."""
    evaluation = benchmark.EvaluationSet.of(matrices)
    friends = eligible(friend_pairs(folder, matrices.users), evaluation.seen, matrices.test,
                       matrices.train)
    if not len(friends):
        raise ValueError(f"no friend pair in {folder} has two members with test items")
    control = eligible(random_pairs(evaluation.users, 3 * len(friends), seed),
                       evaluation.seen, matrices.test, matrices.train)[:len(friends)]
    model = benchmark.ServedTwoTower(model_dir, matrices.items)
    popular = mainstreamness(matrices.train)
    result: Dict[str, Dict[str, Dict[str, float]]] = {}
    for kind, pairs in ((FRIENDS, friends), (RANDOM_PAIRS, control)):
        union = pair_union(pairs, evaluation.seen)
        relevant = [(matrices.test[pairs[:, m]] - matrices.test[pairs[:, m]].multiply(union))
                    .tocsr() for m in (0, 1)]
        for matrix in relevant:
            matrix.eliminate_zeros()
        lists = pair_lists(model, matrices, pairs, union, k)
        more = popular[pairs[:, 0]] >= popular[pairs[:, 1]]
        result[kind] = {strategy: {**pair_metrics(top, lists.solo, *relevant, more,
                                                  matrices.content, k), "pairs": len(pairs)}
                        for strategy, top in lists.blended.items()}
        log(f"  seed {seed}, {kind} ({len(pairs)}): " + "; ".join(
            f"{s} ratio {m['recall ratio']:.3f}, worst {m['worst-member ratio']:.3f}, lead "
            f"{m['mainstream lead']:+.1f}" for s, m in result[kind].items()))
    return result


def aggregate(per_seed: List[Dict[str, Dict[str, Dict[str, float]]]]) -> Dict[str, Dict]:
    """{kind: {strategy: {metric: {"mean", "per_seed"}}}} over seeds."""
    return {kind: benchmark._mean_and_seeds([seed[kind] for seed in per_seed],
                                            sorted(signatures.BLEND_STRATEGIES),
                                            METRICS + ("pairs",))
            for kind in (FRIENDS, RANDOM_PAIRS)}


def aggregate_simulation(per_seed: List[Dict[str, Dict[str, Dict[str, float]]]]) -> Dict:
    """{effects: {arm: {metric: {"mean", "per_seed"}}}} over seeds."""
    return {effects: benchmark._mean_and_seeds([seed[effects] for seed in per_seed],
                                               list(per_seed[0][effects]),
                                               blend_simulation.METRICS)
            for effects in per_seed[0]}


def render(dataset: str, split: str, seeds: Sequence[int], k: int, results: Dict,
           simulation: "Dict | None" = None) -> str:
    lines = [f"# Blend: {dataset}", "",
             f"split: {split}; seeds: {', '.join(map(str, seeds))}; k = {k}; exclusions: "
             "both members' train and eval items, for solo and blended lists alike", ""]
    for kind, strategies in results.items():
        lines += [f"## {kind}", "", "| strategy | " + " | ".join(METRICS) + " | pairs |",
                  "|---" * (len(METRICS) + 2) + "|"]
        for strategy, metrics in strategies.items():
            cells = [f"{metrics[m]['mean']:.3f}" if m in metrics else "—" for m in METRICS]
            lines.append(f"| {strategy} | " + " | ".join(cells)
                         + f" | {metrics['pairs']['mean']:.0f} |")
        lines.append("")
    for effects, arms in (simulation or {}).items():
        lines += [f"## simulated listeners, {effects} ({blend_simulation.DAYS} days)", "",
                  "| arm | " + " | ".join(blend_simulation.METRICS) + " |",
                  "|---" * (len(blend_simulation.METRICS) + 1) + "|"]
        lines += [f"| {arm} | " + " | ".join(f"{metrics[m]['mean']:.3f}"
                                             for m in blend_simulation.METRICS) + " |"
                  for arm, metrics in arms.items()]
        lines.append("")
    return "\n".join(lines)


def run(dataset: str, data_dir: str, out_dir: str, seeds: int = 3, k: int = DEFAULT_K,
        split: "str | None" = None, eval_days: int = 7,
        log: Callable[[str], None] = print) -> Dict:
    """Trains per seed, measures every strategy on friend and random pairs, writes
    `out_dir`/{results.json, blend.md}; returns the aggregated results."""
    if not 1 <= k <= 100:
        raise ValueError(f"k must be in 1..100, got {k}")
    data = benchmark.prepare(dataset, data_dir, out_dir, split=split, eval_days=eval_days,
                             log=log)
    per_seed, simulated = [], []
    for seed in range(seeds):
        matrices, model_dir, _ = benchmark.train_seed(data, out_dir, seed, log)
        per_seed.append(evaluate_seed(matrices, model_dir, data.folder, seed, k, log))
        if dataset == SIMULATED:
            simulated.append(blend_simulation.run_seed(data.folder, model_dir, k, seed, log))
    results = aggregate(per_seed)
    simulation = aggregate_simulation(simulated) if simulated else None
    split_name = data.protocol.describe(with_seed=False)
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump({"dataset": dataset, "k": k, "seeds": list(range(seeds)), "split": split_name,
                   "results": results, **({"simulation": simulation} if simulation else {})},
                  handle, indent=2, sort_keys=True)
    with open(os.path.join(out_dir, "blend.md"), "w") as handle:
        handle.write(render(dataset, split_name, list(range(seeds)), k, results, simulation))
    return results
