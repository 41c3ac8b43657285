"""The C++ runtime check: the pushed model loads in TF's C++ runtime (TF Serving's
LoadSavedModel), replays its warmup records and answers every signature as Python does; a
model with a Python-only or unregistered op fails with the op named."""
import json
import os
import shutil
from typing import Dict, List

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from crossfade.components import features
from crossfade.serving import commands, runtime_check, signatures, warmup

TIMESTAMP = 1_700_000_000  # a fixed time: timestamp <= 0 would mean "now" in the graph
UNKNOWN_TRACK = "spotify:track:not-in-the-catalogue"


@pytest.fixture(scope="session")
def checker(tmp_path_factory) -> str:
    """Builds (once per session) the checker into a temporary CROSSFADE_CACHE_DIR."""
    if shutil.which(os.environ.get(runtime_check.CXX_ENV, "g++")) is None:
        pytest.skip("no g++ on PATH: cannot build the C++ runtime check")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runtime_check.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield str(runtime_check.binary())


def _warmup_ids(path: str):
    users, tracks = [], []
    for name, inputs in warmup.read_warmup_requests(path):
        if name == signatures.SERVING_DEFAULT:
            users += [value.decode() for value in inputs["user_id"]]
        elif name == signatures.SIMILAR_TRACKS:
            tracks += [value.decode() for value in inputs["track_id"]]
    return sorted(set(users))[:3], sorted(set(tracks))[:4]


def _example(user: str, track: str, history: List[str]) -> bytes:
    values = {features.USER_ID: [user], features.TRACK_ID: [track],
              features.RECENT_TRACK_IDS: history, features.TIMESTAMP: [TIMESTAMP]}
    feature = {}
    for name, spec in features.RAW_FEATURE_SPEC.items():
        size = spec.shape[0] if spec.shape else 1
        if spec.dtype == tf.string:
            row = [v.encode() for v in values.get(name, ["x"] * size)]
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=row))
        elif spec.dtype == tf.int64:
            row = values.get(name, [1] * size)
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=row))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * size))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _calls(path: str) -> Dict[str, Dict[str, np.ndarray]]:
    """Inputs for every signature of the pushed model (one call each)."""
    users, tracks = _warmup_ids(path)
    history = (tracks + [""] * features.HISTORY_LENGTH)[:features.HISTORY_LENGTH]
    recent = [tracks[:2], [], [UNKNOWN_TRACK]]
    recommend = signatures.recommend_inputs(users[:1] + ["cold-user", users[-1]], recent,
                                            k=5, platform="ios", timestamp=TIMESTAMP)
    query = {name: value for name, value in recommend.items() if name != "k"}
    seeds = np.array([t.encode() for t in tracks[:2] + [UNKNOWN_TRACK]], dtype=object)
    examples = [_example(users[0], tracks[0], history), _example("cold-user", UNKNOWN_TRACK,
                                                                 [""] * len(history))]
    controlled = signatures.recommend_controls_inputs(
        users[:1] + ["cold-user", users[-1]], recent, k=8, platform="ios", timestamp=TIMESTAMP,
        exclude=[tracks[:1], [], [UNKNOWN_TRACK]], diversity=[0.3, 0.0, 1.0],
        explore=[0.1, 0.5, 0.0], seed=[7, 0, 123], released_within_days=[0, 0, 3650])
    # Two known members; a known member with an unknown one and padding; an anonymous member.
    blend = signatures.blend_inputs(
        [users[:2], [users[-1], "cold-user", ""], ["", users[0]]],
        [[tracks[:2], []], [[], [], []], [[UNKNOWN_TRACK, tracks[0]], []]], k=6,
        strategy=["average", "least-misery", "fair-interleave"], platform="ios",
        timestamp=TIMESTAMP, exclude=[tracks[:1], [], []])
    return {
        signatures.SERVING_DEFAULT: recommend,
        signatures.RECOMMEND: controlled,
        signatures.BLEND: blend,
        signatures.SIMILAR_TRACKS: {"track_id": seeds, "k": np.array([3, 3, 3], np.int32)},
        signatures.QUERY_EMBEDDING: query,
        signatures.CANDIDATE_EMBEDDING: {"track_id": seeds},
        signatures.EVALUATE_EXAMPLES: {"examples": np.array(examples, dtype=object)},
    }


def _assert_same(name: str, key: str, cpp: np.ndarray, python: np.ndarray) -> None:
    where = f"{name}.{key}"
    assert cpp.shape == python.shape, where
    if python.dtype.kind in "fc":
        np.testing.assert_allclose(cpp, python, rtol=0, atol=1e-5, err_msg=where)
    else:
        np.testing.assert_array_equal(cpp, python, err_msg=where)


@pytest.fixture(scope="session")
def pushed_report(checker, pushed_model):
    calls = _calls(pushed_model.path)
    return calls, runtime_check.run_check(pushed_model.path, list(calls.items()))


def test_pushed_model_loads_and_replays_every_warmup_record(pushed_report, pushed_model):
    _, report = pushed_report
    records = list(warmup.read_warmup_requests(pushed_model.path))
    assert report.loaded, report.load_error
    assert report.loads, report.problems()
    assert report.unregistered_ops == () and report.ops_without_cpu_kernel == ()
    assert len(report.warmup) == len(records) > 0
    assert [result.signature for result in report.warmup] == [name for name, _ in records]
    assert report.load_seconds > 0 and report.vm_hwm_kb >= report.vm_rss_kb > 0


def test_pushed_model_lists_its_signatures(pushed_report):
    _, report = pushed_report
    listed = {signature.name: signature for signature in report.signatures}
    for name in (signatures.SERVING_DEFAULT, signatures.RECOMMEND, signatures.BLEND,
                 signatures.SIMILAR_TRACKS,
                 signatures.QUERY_EMBEDDING, signatures.CANDIDATE_EMBEDDING,
                 signatures.EVALUATE_EXAMPLES):
        assert name in listed
    inputs = {t.key: t for t in listed[signatures.SERVING_DEFAULT].inputs}
    assert inputs["k"].dtype == "DT_INT32" and inputs["k"].shape == (-1,)
    assert inputs["recent_track_ids"].shape == (-1, -1)
    assert {t.key for t in listed[signatures.SIMILAR_TRACKS].outputs} == {
        "track_ids", "scores", "found"}


def test_every_signature_answers_as_in_python(pushed_report, pushed_model):
    calls, report = pushed_report
    loaded = tf.saved_model.load(pushed_model.path)
    assert [result.signature for result in report.calls] == list(calls)
    for (name, inputs), result in zip(calls.items(), report.calls, strict=True):
        assert result.ok, f"{name}: {result.error}"
        python = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert set(result.outputs) == set(python), name
        for key, value in python.items():
            _assert_same(name, key, result.outputs[key], value.numpy())


def _save_py_function_model(path: str) -> None:
    class PythonOnly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def double(self, x):
            return {"y": tf.reshape(tf.py_function(lambda v: v * 2, [x], tf.float32), [-1])}

    module = PythonOnly()
    tf.saved_model.save(module, path,
                        signatures={"serving_default": module.double.get_concrete_function()})


def test_py_function_model_fails_naming_eager_py_func(checker, tmp_path):
    path = str(tmp_path / "python_only")
    _save_py_function_model(path)
    report = runtime_check.run_check(
        path, [("serving_default", {"x": np.array([1.0, 2.0], np.float32)})])
    assert not report.loads
    assert report.ops_without_cpu_kernel == ("EagerPyFunc",)
    assert any("EagerPyFunc" in problem for problem in report.problems())
    assert not report.calls[0].ok and "EagerPyFunc" in report.calls[0].error


def _rename_ops(path: str, old: str, new: str, in_graph: bool) -> None:
    """Rewrites saved_model.pb: nodes of op `old` in the function library (or, if `in_graph`,
    in the top-level graph) become op `new`."""
    saved_model = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    with open(pb, "rb") as file:
        saved_model.ParseFromString(file.read())
    graph = saved_model.meta_graphs[0].graph_def
    nodes = graph.node if in_graph else [n for f in graph.library.function for n in f.node_def]
    for node in nodes:
        if node.op == old:
            node.op = new
    with open(pb, "wb") as file:
        file.write(saved_model.SerializeToString())


def test_unregistered_op_in_a_function_is_named(checker, tmp_path):
    """A custom op in a signature's function: LoadSavedModel succeeds (functions instantiate
    lazily), the scan names the op and the call fails."""
    path = str(tmp_path / "custom_op")
    _save_py_function_model(path)
    _rename_ops(path, "EagerPyFunc", "CrossfadeNoSuchOp", in_graph=False)
    report = runtime_check.run_check(
        path, [("serving_default", {"x": np.array([1.0], np.float32)})])
    assert not report.loads
    assert report.unregistered_ops == ("CrossfadeNoSuchOp",)
    assert "op 'CrossfadeNoSuchOp' is not registered" in report.problems()[0]
    assert not report.calls[0].ok
    assert "Op type not registered 'CrossfadeNoSuchOp'" in report.calls[0].error


def test_load_failing_on_an_unregistered_op_names_it(checker, tmp_path):
    path = str(tmp_path / "custom_graph_op")
    _save_py_function_model(path)
    _rename_ops(path, "Placeholder", "CrossfadeGraphOp", in_graph=True)
    report = runtime_check.run_check(path)
    assert not report.loaded and not report.loads
    assert "Op type not registered 'CrossfadeGraphOp'" in report.load_error
    assert "CrossfadeGraphOp" in report.unregistered_ops
    assert any(p.startswith("op 'CrossfadeGraphOp' is not registered") for p in report.problems())


def test_missing_saved_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        runtime_check.run_check(str(tmp_path))


def _check_model(*argv: str) -> int:
    return commands.main(["check-model", *argv])


def test_check_model_command_on_the_base_path(checker, pushed_model, pushed_report, capsys):
    assert _check_model(pushed_model.base_path, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["export_dir"] == os.path.abspath(pushed_model.path)
    assert printed["loads"] and printed["warmup_failures"] == 0
    assert printed["warmup_records"] == len(pushed_report[1].warmup)
    assert _check_model(pushed_model.path) == 0
    out = capsys.readouterr().out
    assert "loads in TF Serving's runtime: yes" in out and "similar_tracks:" in out


def test_check_model_command_fails_a_python_only_model(checker, tmp_path, capsys):
    _save_py_function_model(str(tmp_path / "7"))
    assert _check_model(str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "loads in TF Serving's runtime: no" in out and "EagerPyFunc" in out


def test_check_model_command_bad_path(tmp_path, capsys):
    assert _check_model(str(tmp_path / "missing")) == 2
    assert "missing" in capsys.readouterr().err


def _save_indexed_model(path: str) -> Dict[str, np.ndarray]:
    """A module that ranks 400 tracks through `ServedIndex` as the served model does (the
    search, the bias bounds, cold rows, windows, exclusions), saved; returns a call's inputs."""
    from crossfade.components.trainer import recency, served_index
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(400, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    release_days = (19_000 - rng.integers(0, 100, 400)).astype(np.int64)
    content_only = rng.random(400) < 0.2
    bias = np.linspace(0.2, 0.0, 2 * recency.NUM_BUCKETS, dtype=np.float32).reshape(2, -1)
    tables = served_index.build_tables(embeddings, content_only, release_days, bias, 19_000,
                                       num_partitions=16)
    cold_scores = rng.random(400).astype(np.float32)

    class Indexed(tf.Module):
        def __init__(self):
            super().__init__()
            self.index = served_index.ServedIndex(tables, cold_scores, release_days, 2)
            self.embeddings = tf.Variable(embeddings, trainable=False)
            self.release_days = tf.Variable(release_days, trainable=False)
            self.cold_scores = tf.Variable(cold_scores, trainable=False)

        @tf.function(input_signature=[
            tf.TensorSpec([None, 8], tf.float32, name="queries"),
            tf.TensorSpec([None], tf.bool, name="cold"),
            tf.TensorSpec([None], tf.int64, name="days"),
            tf.TensorSpec([None], tf.int32, name="probe"),
            tf.TensorSpec([None], tf.int32, name="window"),
            tf.TensorSpec([None, None], tf.int32, name="excluded")])
        def top(self, queries, cold, days, probe, window, excluded):
            def score(rows):
                return served_index.partitioned_index.candidate_scores(
                    queries, self.embeddings.read_value(), rows)
            rows, scores = self.index.top(queries, cold, days, probe, window, excluded, 10,
                                          score, self.cold_scores.read_value(),
                                          self.release_days.read_value())
            return {"rows": rows, "scores": scores}

    module = Indexed()
    tf.saved_model.save(module, path, signatures={"top": module.top.get_concrete_function()})
    return {"queries": embeddings[:3] + 0.1, "cold": np.array([False, True, False]),
            "days": np.full(3, 19_001, np.int64), "probe": np.array([0, 1, 16], np.int32),
            "window": np.array([0, 0, 7], np.int32),
            "excluded": np.array([[1, -1], [2, 3], [-1, -1]], np.int32)}


def test_the_partitioned_index_runs_on_stock_ops_only(checker, tmp_path):
    path = str(tmp_path / "indexed")
    inputs = _save_indexed_model(path)
    report = runtime_check.run_check(path, [("top", inputs)])
    assert report.loads, report.problems()
    assert report.unregistered_ops == () and report.ops_without_cpu_kernel == ()
    assert report.calls[0].ok, report.calls[0].error
    python = tf.saved_model.load(path).signatures["top"](
        **{name: tf.constant(value) for name, value in inputs.items()})
    for key, value in python.items():
        _assert_same("top", key, report.calls[0].outputs[key], value.numpy())
