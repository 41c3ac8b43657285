"""The benchmark's evaluation plumbing on hand-made splits and a stand-in SavedModel.

The stand-in has the exported model's query signatures with their input names (a user
embedding plus the mean of the recent tracks' embeddings, the stored history when none is
sent; `recommend` is pure relevance with exclusions, whatever `diversity` says). That is
enough to check what the benchmark does around the model: requests (built by
`signatures.recommend_controls_inputs`), exclusions as ids, "" padding back to `PAD`, the
metrics, aggregation and the report files. The real export's `recommend` is checked against
full-sort scoring at the end. The whole benchmark on real data is
tests/test_quality_benchmark.py.
"""
import dataclasses
import json

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from crossfade.components import features
from crossfade.components.evaluator import list_metrics
from crossfade.components.trainer import export
from crossfade.pipeline.quality import benchmark, ranking_metrics
from crossfade.serving import signatures

DIM = 8
NUM_ITEMS, NUM_USERS = 120, 12  # more items than CURVE_MAX_K
ITEMS = np.array([f"t{i}".encode() for i in range(NUM_ITEMS)], dtype=object)
USERS = np.array([f"u{i}".encode() for i in range(NUM_USERS)], dtype=object)
QUERY_SPEC = export.QUERY_INPUT_SIGNATURE
RECOMMEND_SPEC = QUERY_SPEC + (export.K_INPUT,) + export.CONTROL_INPUT_SIGNATURE


class StandIn(tf.Module):
    """Query tower: user embedding + mean recent-track embedding (stored history if none)."""

    def __init__(self, stored_history: np.ndarray, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        items = rng.standard_normal((NUM_ITEMS, DIM)).astype(np.float32)
        self.items = tf.constant(items / np.linalg.norm(items, axis=1, keepdims=True))
        self.users = tf.constant(rng.standard_normal((NUM_USERS, DIM)).astype(np.float32))
        self.ids = tf.constant(ITEMS)
        self.catalogue_ids = tf.Variable(ITEMS, trainable=False)
        self.stored = tf.constant(stored_history)  # [U, H] ids, "" padded
        self.item_row = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(ITEMS), tf.range(NUM_ITEMS)), default_value=-1)
        self.user_row = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(USERS), tf.range(NUM_USERS)), default_value=-1)

    def _embed(self, user_id, recent_track_ids):
        users = tf.maximum(self.user_row.lookup(user_id), 0)
        empty = tf.reduce_all(tf.equal(recent_track_ids, ""), axis=1)
        stored = tf.gather(self.stored, users)
        width = tf.maximum(tf.shape(recent_track_ids)[1], tf.shape(stored)[1])

        def padded(ids):
            return tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])
        history = tf.where(empty[:, None], padded(stored), padded(recent_track_ids))
        rows = self.item_row.lookup(history)
        known = tf.cast(rows >= 0, tf.float32)[:, :, None]
        mean = tf.reduce_sum(tf.gather(self.items, tf.maximum(rows, 0)) * known, axis=1) / \
            tf.maximum(tf.reduce_sum(known, axis=1), 1.0)
        return tf.math.l2_normalize(tf.gather(self.users, users) + mean, axis=1)

    @tf.function(input_signature=QUERY_SPEC)
    def query_embedding(self, user_id, recent_track_ids, timestamp, platform):
        return {"embedding": self._embed(user_id, recent_track_ids)}

    @tf.function(input_signature=QUERY_SPEC)
    def catalogue_scores(self, user_id, recent_track_ids, timestamp, platform):
        return tf.matmul(self._embed(user_id, recent_track_ids), self.items, transpose_b=True)

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"),))
    def candidate_embedding(self, track_id):
        rows = self.item_row.lookup(track_id)
        return {"embedding": tf.gather(self.items, tf.maximum(rows, 0)), "found": rows >= 0}

    @tf.function(input_signature=RECOMMEND_SPEC)
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k, exclude_track_ids,
                  diversity, explore, seed, released_within_days, probe):
        scores = tf.matmul(self._embed(user_id, recent_track_ids), self.items,
                           transpose_b=True)
        excluded = tf.reduce_any(tf.equal(exclude_track_ids[:, :, None],
                                          self.ids[None, None, :]), axis=1)
        scores = tf.where(excluded, -np.inf, scores)
        top = tf.math.top_k(scores, k=tf.reduce_max(k))
        ids = tf.where(tf.math.is_finite(top.values), tf.gather(self.ids, top.indices), "")
        zeros = tf.zeros_like(top.values)
        return {"track_ids": ids, "scores": top.values, "titles": ids, "artists": ids,
                "propensities": zeros + 1.0}


def _csr(rows):
    pairs = [(u, i) for u, items in enumerate(rows) for i in items]
    return sp.csr_matrix((np.ones(len(pairs), np.float32),
                          ([u for u, _ in pairs], [i for _, i in pairs])),
                         shape=(len(rows), NUM_ITEMS))


def _queries(rows, history):
    width = features.HISTORY_LENGTH
    recent = np.full((len(rows), width), b"", dtype=object)
    for index, row in enumerate(rows):
        recent[index, :len(history[row])] = ITEMS[history[row][:width]]
    return {features.USER_ID: USERS[rows], features.RECENT_TRACK_IDS: recent,
            features.TIMESTAMP: np.full(len(rows), 1_700_000_000, np.int64),
            features.PLATFORM: np.full(len(rows), b"android", dtype=object),
            "row": np.asarray(rows)}


def _matrices(seed: int = 0) -> benchmark.SplitMatrices:
    """Disjoint random train/eval/test per user; user 0 has seen all but 5 items (2 of them
    its test items), so its `recommend` list runs out after 5 and is "" padded."""
    rng = np.random.default_rng(seed)
    train, evaluation, test = [], [], []
    for user in range(NUM_USERS):
        items = rng.permutation(NUM_ITEMS).tolist()
        if user == 0:
            evaluation.append(items[:3])
            test.append(items[3:5])
            train.append(items[8:])
            continue
        size = int(rng.integers(6, 16))
        cut = max(1, size // 10)
        evaluation.append(items[:cut])
        test.append(items[cut:2 * cut])
        train.append(items[2 * cut:size])
    genres = np.array([[f"g{i % 4}".encode(), b"", b""] for i in range(NUM_ITEMS)], dtype=object)
    tags = np.full((NUM_ITEMS, features.MAX_TAGS), b"", dtype=object)
    tags[:, 0] = [f"tag{i % 7}".encode() for i in range(NUM_ITEMS)]
    tags[::5] = b""  # every fifth item has a genre only
    users = np.arange(NUM_USERS)
    return benchmark.SplitMatrices(
        users=USERS, items=ITEMS, train=_csr(train), eval=_csr(evaluation), test=_csr(test),
        queries={"test": _queries(users, train), "eval": _queries(users, train)},
        content=list_metrics.content_matrix(genres, tags))


def _stored_history(matrices):
    history = np.full((NUM_USERS, features.HISTORY_LENGTH), b"", dtype=object)
    for user in range(NUM_USERS):
        items = matrices.train[user].indices[:features.HISTORY_LENGTH]
        history[user, :len(items)] = ITEMS[items]
    return history


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    matrices = _matrices()
    module = StandIn(_stored_history(matrices))
    export_dir = str(tmp_path_factory.mktemp("stand-in"))
    tf.saved_model.save(module, export_dir, signatures={
        signatures.QUERY_EMBEDDING: module.query_embedding.get_concrete_function(),
        signatures.CANDIDATE_EMBEDDING: module.candidate_embedding.get_concrete_function(),
        signatures.RECOMMEND: module.recommend.get_concrete_function()})
    return export_dir, matrices


@pytest.fixture(scope="module")
def seed_results(stand_in):
    export_dir, matrices = stand_in
    patch = pytest.MonkeyPatch()
    # Two quick baselines are enough to check the plumbing around them.
    patch.setattr(benchmark, "_baseline_factories", lambda seed, content=None: {
        "most-popular": lambda _: benchmark.baselines.MostPopular(),
        "ease": lambda l2: benchmark.baselines.EASE(l2=l2)})
    patch.setitem(benchmark.baselines.DEFAULT_GRIDS, "ease", [10.0, 100.0])
    try:
        return benchmark.evaluate_seed(matrices, export_dir, seed=3,
                                       diversities=[0.0, 0.5], log=lambda _: None)
    finally:
        patch.undo()


def test_recommend_lists_match_full_sort_with_exclusions(stand_in):
    export_dir, matrices = stand_in
    evaluation = benchmark.EvaluationSet.of(matrices)
    model = benchmark.ServedTwoTower(export_dir, matrices.items)
    queries = matrices.queries["test"]
    scores = model.scores(queries, NUM_USERS)[evaluation.users]
    expected = ranking_metrics.top_k(scores, evaluation.seen[evaluation.users], 10)
    ordered = benchmark._queries_for(queries, evaluation.users)
    served = model.recommend(ordered, evaluation.seen[evaluation.users], 0.0, seed=1)
    np.testing.assert_array_equal(served, expected)
    assert 0 in evaluation.users  # user 0: 5 eligible items, then PAD in both
    assert (served[list(evaluation.users).index(0)] == ranking_metrics.PAD).sum() == 5


def test_evaluate_seed_reports_every_metric_and_the_sweep(seed_results):
    methods = seed_results.methods
    assert list(methods) == ["two-tower", "most-popular", "ease"]
    for name, result in methods.items():
        assert set(benchmark.METRICS) <= set(result), name
        assert len(result["recall_curve"]) == benchmark.CURVE_MAX_K
        assert 0 < result["coverage@10"] <= 1 and 0 <= result["ild@10"] <= 1
        assert result["novelty@10"] > 0
    # Most-popular lists the same items to everyone: the least coverage.
    assert methods["most-popular"]["coverage@10"] < methods["two-tower"]["coverage@10"]
    sweep = seed_results.diversity
    assert list(sweep) == ["0", "0.5"]
    # At diversity 0 the served path is the full-sort scoring: every metric agrees.
    for metric in benchmark.METRICS:
        assert sweep["0"][metric] == pytest.approx(methods["two-tower"][metric], abs=1e-12)
    assert sweep["0"][benchmark.FULL_SORT_GAP] == 0.0
    assert benchmark.FULL_SORT_GAP not in sweep["0.5"]


def test_empty_history_uses_the_stored_one(seed_results):
    # The stand-in stores exactly the history the queries send: nothing may change.
    history = seed_results.history
    assert history[benchmark.USER_ID_ALONE] == pytest.approx(history[benchmark.WITH_HISTORY])
    assert benchmark._history_ratio(history) == pytest.approx(1.0)


def test_without_history_blanks_only_the_recent_tracks():
    queries = _queries(np.arange(3), [[0, 1], [2], [3, 4, 5]])
    blank = benchmark._without_history(queries)
    assert blank[features.RECENT_TRACK_IDS].shape == queries[features.RECENT_TRACK_IDS].shape
    assert (blank[features.RECENT_TRACK_IDS] == b"").all()
    np.testing.assert_array_equal(blank[features.USER_ID], queries[features.USER_ID])
    assert queries[features.RECENT_TRACK_IDS][0, 0] == b"t0"  # the input is left alone


def test_list_quality_by_hand():
    # Items 0 and 1 share their only genre; item 2 has another; item 3 has no content.
    genres = np.array([[b"rock"], [b"rock"], [b"jazz"], [b""]], dtype=object)
    content = list_metrics.content_matrix(genres, np.full((4, 1), b"", dtype=object))
    evaluation = benchmark.EvaluationSet(
        users=np.arange(2), seen=sp.csr_matrix((2, 4)), relevant=sp.csr_matrix((2, 4)),
        content=content, information=np.array([1.0, 2.0, 3.0, 4.0]))
    pad = ranking_metrics.PAD
    lists = np.array([[0, 1, 2] + [pad] * 7, [3, pad, pad] + [pad] * 7])
    quality = evaluation.list_quality(lists)
    # List 0: pairs (0,1) 0, (0,2) 1, (1,2) 1 -> 2/3; list 1 has no pair: left out.
    assert quality["ild@10"] == pytest.approx(2 / 3)
    assert quality["novelty@10"] == pytest.approx((2.0 + 4.0) / 2)  # (1+2+3)/3 and 4
    assert quality["coverage@10"] == pytest.approx(1.0)
    no_content = benchmark.EvaluationSet(**{**evaluation.__dict__, "content": None})
    assert "ild@10" not in no_content.list_quality(lists)


def test_cold_and_warm_recall_by_hand():
    # Item 3 has no training play (cold). User 0 wants 0 and 3, user 1 wants 1, user 2 wants 3.
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]], float))
    evaluation = benchmark.EvaluationSet(
        users=np.arange(3), seen=sp.csr_matrix((3, 4)), relevant=relevant, content=None,
        information=np.ones(4), cold=np.array([False, False, False, True]))
    pad = ranking_metrics.PAD
    lists = np.array([[3, 2] + [pad] * 8, [0, 2] + [pad] * 8, [1, 2] + [pad] * 8])
    segments = evaluation.segments(lists)
    # Cold: user 0 finds 3, user 2 does not; warm: user 0 misses 0, user 1 misses 1.
    assert segments == {"cold recall@10": 0.5, "warm recall@10": 0.0, "cold test items": 2.0}
    assert set(segments) <= set(evaluation.measure(lists))
    warm_only = dataclasses.replace(evaluation, cold=np.zeros(4, bool))
    assert warm_only.segments(lists) == {}


def test_aggregation_of_the_sweep_and_history():
    seeds = [{"0": {"recall@10": 0.2, "ild@10": 0.3, benchmark.FULL_SORT_GAP: 0.0},
              "0.5": {"recall@10": 0.1, "ild@10": 0.6}},
             {"0": {"recall@10": 0.4, "ild@10": 0.5, benchmark.FULL_SORT_GAP: 0.0},
              "0.5": {"recall@10": 0.3}}]
    sweep = benchmark.aggregate_diversity(seeds)
    assert list(sweep) == ["0", "0.5"]
    assert sweep["0"]["recall@10"] == {"mean": pytest.approx(0.3), "per_seed": [0.2, 0.4]}
    assert "ild@10" not in sweep["0.5"]  # one seed lacks it: not averaged over the other
    history = benchmark.aggregate_history([
        {benchmark.WITH_HISTORY: {"recall@10": 0.2, "ndcg@10": 0.1, "hit@10": 0.5},
         benchmark.USER_ID_ALONE: {"recall@10": 0.19, "ndcg@10": 0.1, "hit@10": 0.5}},
        {benchmark.WITH_HISTORY: {"recall@10": 0.25, "ndcg@10": 0.1, "hit@10": 0.5},
         benchmark.USER_ID_ALONE: {"recall@10": 0.25, "ndcg@10": 0.1, "hit@10": 0.5}}])
    ratio = history[benchmark.HISTORY_RATIO]
    assert ratio["per_seed"] == pytest.approx([0.95, 1.0])
    assert ratio["mean"] == pytest.approx(0.975) and ratio["target"] == 0.98


@pytest.mark.parametrize("settings", [[], [1.5], [-0.1], [0.1, 0.10]])
def test_bad_diversity_settings_are_refused(settings):
    with pytest.raises(ValueError, match="diversity"):
        benchmark._check_diversities(settings)


def test_cli_parses_the_diversity_list():
    from crossfade.pipeline import cli
    args = cli.build_parser().parse_args(
        ["benchmark", "quality", "--dataset", "csv", "--data-dir", "x",
         "--diversity", "0,0.1,0.25"])
    assert args.diversity == [0.0, 0.1, 0.25]
    default = cli.build_parser().parse_args(
        ["benchmark", "quality", "--dataset", "csv", "--data-dir", "x"])
    assert default.diversity is None  # the benchmark's DEFAULT_DIVERSITIES then


def test_written_report_has_the_new_tables_plot_and_keys(seed_results, tmp_path):
    per_seed = [seed_results, seed_results]
    methods = benchmark.aggregate([s.methods for s in per_seed])
    result = benchmark.BenchmarkResult(
        dataset="tiny", split="random 8:1:1 per user", seeds=[0, 1], methods=methods,
        curves={m: np.linspace(0, 1, benchmark.CURVE_MAX_K).tolist() for m in methods},
        details={"hyperparameters": {"epochs": 2},
                 "per_seed_details": [benchmark._details(s.methods) for s in per_seed],
                 "import": benchmark._import_details({"users": 3, "pseudonym_key": "/k"}),
                 "tuning": [{"best_values": {"epochs": 20, "learning_rate": 0.25}},
                            {"best_values": {"epochs": 5, "learning_rate": 0.123456}}]},
        diversity=benchmark.aggregate_diversity([s.diversity for s in per_seed]),
        stored_history=benchmark.aggregate_history([s.history for s in per_seed]))
    benchmark._write(result, str(tmp_path), str(tmp_path / "summary.json"))
    text = (tmp_path / "quality.md").read_text()
    assert "| Method | Recall@10 | NDCG@10 | Hit@10 | ILD@10 | Novelty@10 (bits) | " \
        "Coverage@10 |" in text
    assert "| diversity 0 |" in text and "| diversity 0.5 |" in text
    assert "differs by [+0.0000, +0.0000] per seed" in text
    assert "| user id alone |" in text and "(target >= 0.98)" in text
    assert ("two-tower tuned on eval by the pipeline's Tuner, per seed: (epochs=20, "
            "learning_rate=0.25); (epochs=5, learning_rate=0.1235)") in text
    assert (tmp_path / "diversity_tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved) == {"two-tower", "most-popular", "ease", "_diversity",
                          "_stored_history", "_meta"}
    assert set(benchmark.METRICS) <= set(saved["two-tower"]) <= set(
        benchmark.METRICS + benchmark.COLD_METRICS)
    if "cold recall@10" in saved["two-tower"]:  # the split left cold test items
        assert "| Cold Recall@10 | Warm Recall@10 |" in text
    assert saved["_diversity"]["0.5"]["ild@10"]["per_seed"][0] == pytest.approx(
        seed_results.diversity["0.5"]["ild@10"])
    assert saved["_stored_history"]["recall@10 ratio"]["mean"] == pytest.approx(1.0)
    assert "pseudonym_key" not in json.dumps(saved)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == set(methods)  # the --json contract: methods only


def test_each_seed_runs_the_pipeline_with_the_settings_and_returns_its_run(tmp_path,
                                                                          monkeypatch):
    """`--tune`: every seed's pipeline tunes on its own split (its eval split; the benchmark
    reads test only afterwards), and the seed's run summary carries the Tuner's winner."""
    from crossfade.components.example_gen.split_protocols import SplitProtocol
    from crossfade.components.trainer.hyperparameters import Hyperparameters
    from crossfade.pipeline import local_runner, run_summary
    ran = []
    summary = run_summary.RunSummary(
        run_id="r", component_states={}, tuning={"best_trial_id": "1", "objective": "recall@50",
                                                 "best_score": 0.5,
                                                 "best_values": {"epochs": 20}},
        artifact_uris={"CatalogueTrainer/Model": "/model", "StreamQualifier/Examples": "/q",
                       "CatalogueExampleGen/Examples": "/c"})
    monkeypatch.setattr(local_runner, "run", ran.append)
    monkeypatch.setattr(run_summary, "latest_run", lambda config: summary)
    monkeypatch.setattr(benchmark, "split_matrices", lambda plays, catalogue: (plays, catalogue))
    data = benchmark.PreparedData(str(tmp_path), SplitProtocol(name="random"),
                                  Hyperparameters(epochs=3), {},
                                  pipeline_settings={"tune": True, "tune_trials": 4})
    lines = []
    matrices, model_dir, run = benchmark.train_seed(data, str(tmp_path), 2, lines.append)
    config, = ran
    assert config.tune is True and config.tune_trials == 4
    assert config.split.seed == 2 and config.hyperparameters.seed == 2
    assert config.hyperparameters.epochs == 3  # the Tuner's starting point
    assert run is summary and matrices == ("/q", "/c") and model_dir.startswith("/model")
    assert any("with the Tuner (4 trials)" in line for line in lines)
    assert any("Tuner: trial 1 won, recall@50 0.5000 on eval: epochs=20" in line
               for line in lines)


# --- the real export ---------------------------------------------------------------------------

REAL_TRACKS = 30
REAL_USERS = 6


def _real_export(work_dir: str, train_rows) -> str:
    """The real `export.RecommenderModule` (untrained towers) over REAL_TRACKS tracks."""
    from crossfade.components.testing_data import analyze_and_transform, raw_play
    from crossfade.components.trainer import export, train
    from crossfade.components.trainer import model as model_lib
    from crossfade.components.trainer.catalogue_index import CatalogueIndex
    from crossfade.components.trainer.hyperparameters import Hyperparameters
    tracks = [track.decode() for track in ITEMS[:REAL_TRACKS]]
    plays = [raw_play(f"u{user}", tracks[item], history=[tracks[i] for i in items[:3]],
                      ts=3600 * (user + position), artist=f"a{item % 5}",
                      genres=[f"g{item % 4}"], tags=[f"tag{item % 7}"])
             for user, items in enumerate(train_rows) for position, item in enumerate(items)]
    _, transform_output = analyze_and_transform(plays, f"{work_dir}/tft")
    counts = train.track_play_counts(transform_output)
    hp = Hyperparameters(embedding_dim=8, id_embedding_dim=8, content_embedding_dim=4,
                         hidden_units=16)
    # Dated tracks and a recency bias that matters: the full sort must score as serving does.
    rng = np.random.default_rng(3)
    release_days = 1_700_000_000 // 86400 - rng.integers(0, 30, REAL_TRACKS)
    two_tower = model_lib.TwoTowerModel(
        train.vocabularies(transform_output), hp,
        train.sampling_probabilities(transform_output, counts),
        catalogue_row=train.catalogue_rows(transform_output, ITEMS[:REAL_TRACKS]),
        catalogue_release_days=release_days)
    two_tower.recency_bias.build(None)
    two_tower.recency_bias.bias.assign(rng.normal(0, 0.5, two_tower.recency_bias.bias.shape))
    raw = features.default_raw_values(tf.constant(REAL_TRACKS))
    raw[features.TRACK_ID] = tf.constant(tracks)
    embeddings = two_tower.candidate_tower(
        transform_output.transform_features_layer()(raw)).numpy()
    index = CatalogueIndex(ids=ITEMS[:REAL_TRACKS], embeddings=embeddings,
                           play_counts=np.array([counts.get(t.encode(), 0) for t in tracks]),
                           release_days=release_days)
    module = export.RecommenderModule(two_tower, transform_output, index, default_k=10,
                                      max_k=100)
    export.save(module, f"{work_dir}/model")
    return f"{work_dir}/model"


def test_real_recommend_at_diversity_0_is_the_full_sort_ranking(tmp_path):
    rng = np.random.default_rng(5)
    rows = [rng.permutation(REAL_TRACKS).tolist() for _ in range(REAL_USERS)]
    train_rows = [row[:8 + 2 * user] for user, row in enumerate(rows)]
    seen = sp.csr_matrix((np.ones(sum(len(r) for r in train_rows)),
                          (np.repeat(np.arange(REAL_USERS), [len(r) for r in train_rows]),
                           np.concatenate(train_rows))), shape=(REAL_USERS, REAL_TRACKS))
    model = benchmark.ServedTwoTower(_real_export(str(tmp_path), train_rows),
                                     ITEMS[:REAL_TRACKS])
    queries = _queries(np.arange(REAL_USERS), train_rows)
    queries[features.USER_ID] = np.array([f"u{u}".encode() for u in range(REAL_USERS)],
                                         dtype=object)
    expected = ranking_metrics.top_k(model.scores(queries, REAL_USERS), seen, 10)
    served = model.recommend(queries, seen, 0.0, seed=1)
    np.testing.assert_array_equal(served, expected)
    # Re-ranking changes lists but still never shows a seen track.
    diverse = model.recommend(queries, seen, 0.9, seed=1)
    assert not seen[np.arange(REAL_USERS)[:, None], np.maximum(diverse, 0)].toarray().any()


def test_simulated_dataset_needs_a_generated_folder(tmp_path):
    from crossfade.components.listening_data.sources import InputDataError
    with pytest.raises(InputDataError, match="data folder does not exist"):
        benchmark.run("simulated", str(tmp_path / "nothing"), str(tmp_path / "out"),
                      log=lambda _: None)
    (tmp_path / "generic").mkdir()
    (tmp_path / "generic" / "interactions.csv").write_text("user_id,item_id\nu,i\n")
    with pytest.raises(ValueError, match="needs a folder written by `crossfade generate`"):
        benchmark.run("simulated", str(tmp_path / "generic"), str(tmp_path / "out"),
                      log=lambda _: None)
