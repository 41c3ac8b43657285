"""The clients against a model server serving a pipeline-pushed model.

Every server test runs against the local server (`python -m crossfade.serving.commands serve`) and,
when the environment variable TF_SERVING_BIN names a `tensorflow_model_server` binary,
against the real TF Serving started the same way on the same base path; otherwise those
runs skip. Both get the same model config (version label `stable`), so the tests hold for
both unless marked local-only (UNIMPLEMENTED methods, size limits).
"""
import contextlib
import csv
import dataclasses
import glob
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import grpc
import numpy as np
import portpicker
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    prediction_service_pb2_grpc,
)

from crossfade.components.pusher import atomic_pusher
from crossfade.components.trainer import export
from crossfade.serving import commands, signatures
from crossfade.serving.client import GrpcClient, RestClient, ServingClientError, connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL, REAL = "local", "tensorflow_model_server"
MODEL = "crossfade"
TIMESTAMP = 1_700_000_000  # fixed: the hour and weekday features must match in process
START_SECONDS = 180


@dataclasses.dataclass
class RunningServer:
    kind: str
    grpc_target: str
    rest_target: str
    process: subprocess.Popen
    log_path: str

    def grpc(self, **options) -> GrpcClient:
        return GrpcClient(self.grpc_target, MODEL, **options)

    def rest(self, **options) -> RestClient:
        return RestClient(self.rest_target, MODEL, **options)

    def log_tail(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-3000:]


def _config_file(path: str, base_path: str, labels: Dict[str, int]) -> str:
    label_text = "".join(f'    version_labels {{ key: "{name}" value: {version} }}\n'
                         for name, version in labels.items())
    with open(path, "w") as handle:
        handle.write(f'model_config_list {{\n  config {{\n    name: "{MODEL}"\n'
                     f'    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
                     f'{label_text}  }}\n}}\n')
    return path


def _command(kind: str, config: str, grpc_port: int, rest_port: int) -> List[str]:
    if kind == LOCAL:
        return [sys.executable, "-m", "crossfade.serving.commands", "serve", "--model-config-file",
                config, "--port", str(grpc_port), "--rest-port", str(rest_port),
                "--poll-seconds", "0.5"]
    return [os.environ["TF_SERVING_BIN"], f"--port={grpc_port}", f"--rest_api_port={rest_port}",
            f"--model_config_file={config}", "--file_system_poll_wait_seconds=1",
            "--allow_version_labels_for_unavailable_models=true"]


def _wait_until_serving(server: RunningServer, version: int) -> None:
    client = server.grpc(timeout_s=2.0)
    deadline = time.monotonic() + START_SECONDS
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.kind} exited with {server.process.returncode}:\n"
                                   f"{server.log_tail()}")
            with contextlib.suppress(ServingClientError):
                if any(s.version == version and s.state == "AVAILABLE"
                       for s in client.model_status()):
                    return
            time.sleep(0.25)
        raise TimeoutError(f"{server.kind} did not serve version {version} in "
                           f"{START_SECONDS} s:\n{server.log_tail()}")
    finally:
        client.close()


@contextlib.contextmanager
def _serving(kind: str, work_dir: str, base_path: str, version: int, labels=None):
    if kind == REAL and not os.environ.get("TF_SERVING_BIN"):
        pytest.skip("TF_SERVING_BIN is not set: no tensorflow_model_server to test against")
    os.makedirs(work_dir, exist_ok=True)
    config = _config_file(os.path.join(work_dir, "models.config"), base_path, labels or {})
    grpc_port, rest_port = portpicker.pick_unused_port(), portpicker.pick_unused_port()
    log_path = os.path.join(work_dir, f"{kind}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(_command(kind, config, grpc_port, rest_port), cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(kind, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{rest_port}",
                           process, log_path)
    try:
        _wait_until_serving(server, version)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module", params=[LOCAL, REAL])
def server(request, pushed_model, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp(f"server-{request.param}"))
    with _serving(request.param, work_dir, pushed_model.base_path, pushed_model.version,
                  labels={"stable": pushed_model.version}) as running:
        yield running


@pytest.fixture(scope="module")
def saved_model(pushed_model):
    return tf.saved_model.load(pushed_model.path)


@pytest.fixture(scope="module")
def listeners(pushed_model):
    """(user ids, their recent tracks most recent first) from the last day of plays."""
    plays = sorted(glob.glob(os.path.join(pushed_model.data_dir, "plays", "span-*",
                                          "plays.csv")))[-1]
    history: Dict[str, List[str]] = {}
    with open(plays) as handle:
        for row in csv.DictReader(handle):
            history.setdefault(row["username"], []).insert(0, row["spotify_track_uri"])
    users = sorted(history)[:4]
    return users, [history[user][:10] for user in users]


def _in_process(saved_model, signature: str, inputs) -> Dict[str, np.ndarray]:
    outputs = saved_model.signatures[signature](
        **{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def _local_only(server: RunningServer) -> None:
    if server.kind != LOCAL:
        pytest.skip("behaviour of crossfade's local server only")


# -- results -------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize("k", [10, 100])
def test_recommend_returns_the_saved_models_top_k(server, saved_model, listeners, protocol,
                                                  k, pushed_model):
    users, recent = listeners
    cases = [(users[0], recent[0]), (users[1], None),  # known users, with and without history
             ("somebody-new", recent[2][:3]),  # unknown user, known recent tracks
             ("somebody-new", None)]  # cold: the most-popular ranking
    with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                 timeout_s=30) as client:
        for user, history in cases:
            result = client.recommend(user, history, k, platform="android", timestamp=TIMESTAMP)
            expected = _in_process(saved_model, signatures.SERVING_DEFAULT,
                                   signatures.recommend_inputs([user], [history], k, "android",
                                                               TIMESTAMP))
            assert result.track_ids == [t.decode() for t in expected["track_ids"][0]]
            np.testing.assert_allclose([t.score for t in result.tracks],
                                       expected["scores"][0], rtol=1e-5, atol=1e-6)
            assert len(result.tracks) == k
            if protocol == "grpc":
                assert result.model_version == pushed_model.version


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_similar_tracks_returns_the_saved_models_neighbours(server, saved_model, listeners,
                                                            protocol):
    seed = listeners[1][0][0]
    with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                 timeout_s=30) as client:
        result = client.similar_tracks(seed, k=12)
        missing = client.similar_tracks("spotify:track:not-in-the-catalogue")
    expected = _in_process(saved_model, signatures.SIMILAR_TRACKS,
                           signatures.similar_tracks_inputs([seed], 12))
    assert result.found and seed not in result.track_ids
    assert result.track_ids == [t.decode() for t in expected["track_ids"][0]]
    np.testing.assert_allclose([t.score for t in result.tracks], expected["scores"][0],
                               rtol=1e-5, atol=1e-6)
    assert not missing.found and missing.tracks == ()


# -- versions, labels, status --------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_status_and_version_choice(server, pushed_model, listeners, protocol):
    version = pushed_model.version
    user = listeners[0][0]
    with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                 timeout_s=30) as client:
        statuses = client.model_status()
        assert [(s.version, s.state, s.error_code) for s in statuses] == \
            [(version, "AVAILABLE", "OK")]
        assert client.model_status(label="stable")[0].version == version
        by_version = client.recommend(user, k=5, version=version)
        by_label = client.recommend(user, k=5, label="stable")
        assert by_version.track_ids == by_label.track_ids == client.recommend(user, k=5).track_ids
        if protocol == "grpc":
            assert by_label.model_version == version
        for choice, code in (({"version": version + 1}, grpc.StatusCode.NOT_FOUND),
                             ({"label": "canary"}, grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(ServingClientError) as error:
                client.recommend(user, k=5, **choice)
            assert error.value.code == code


def test_model_metadata_lists_the_signatures(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec={"name": MODEL}, metadata_field=["signature_def"]), timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    default = signature_map.signature_def[signatures.SERVING_DEFAULT]
    assert set(default.inputs) == set(signatures.recommend_inputs(["u"]))
    assert set(default.outputs) == {"track_ids", "scores"}
    status, document = _http(server, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    rest_signatures = document["metadata"]["signature_def"]["signature_def"]
    assert set(rest_signatures[signatures.SIMILAR_TRACKS]["outputs"]) == \
        {"track_ids", "scores", "found"}


# -- bad requests ----------------------------------------------------------------------------

def _good_inputs():
    return signatures.recommend_inputs(["u1"], [["spotify:track:x"]], k=5)


BAD_REQUESTS = {
    # name: (model, signature, inputs, gRPC code, HTTP status)
    "unknown model": ("nope", signatures.SERVING_DEFAULT, _good_inputs(),
                      grpc.StatusCode.NOT_FOUND, 404),
    "unknown signature": (MODEL, "nope", _good_inputs(),
                          grpc.StatusCode.FAILED_PRECONDITION, 400),
    "wrong dtype": (MODEL, signatures.SERVING_DEFAULT,
                    {**_good_inputs(), "k": np.array([5], np.int64)},
                    grpc.StatusCode.INVALID_ARGUMENT, 400),
    "missing input": (MODEL, signatures.SERVING_DEFAULT,
                      {k: v for k, v in _good_inputs().items() if k != "timestamp"},
                      grpc.StatusCode.INVALID_ARGUMENT, 400),
    "k too large": (MODEL, signatures.SERVING_DEFAULT,
                    {**_good_inputs(), "k": np.array([101], np.int32)},
                    grpc.StatusCode.INVALID_ARGUMENT, 400),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_their_error_code(server, case):
    model, signature, inputs, code, http_status = BAD_REQUESTS[case]
    with GrpcClient(server.grpc_target, model, timeout_s=30) as client:
        with pytest.raises(ServingClientError) as error:
            client.predict(signature, inputs)
    assert error.value.code == code, error.value.message
    body = {"signature_name": signature, "inputs": {
        name: (np.char.decode(value.astype(bytes)).tolist() if value.dtype == object
               else value.tolist()) for name, value in inputs.items()}}
    if case == "wrong dtype":  # JSON has no int64: a string where an int32 is expected
        body["inputs"]["k"] = ["five"]
    status, document = _http(server, "POST", f"/v1/models/{model}:predict", body)
    assert status == http_status and document.get("error")


def test_bad_versions_and_labels_over_rest(server, pushed_model):
    status, document = _http(server, "GET", f"/v1/models/{MODEL}/versions/"
                                            f"{pushed_model.version + 1}")
    assert status == 404 and "Could not find version" in document["error"]
    status, document = _http(server, "POST", f"/v1/models/{MODEL}/labels/canary:predict",
                             {"instances": [{"track_id": "x", "k": 1}],
                              "signature_name": signatures.SIMILAR_TRACKS})
    assert status == 400 and "Unrecognized servable version label" in document["error"]


def test_local_server_limits_and_unimplemented_methods(server):
    _local_only(server)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Classify(classification_pb2.ClassificationRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    huge = {**_good_inputs(), "user_id": np.array([b"x" * (5 * 1024 * 1024)], dtype=object)}
    with GrpcClient(server.grpc_target, MODEL, timeout_s=30) as client:
        with pytest.raises(ServingClientError) as error:
            client.predict(signatures.SERVING_DEFAULT, huge)
    assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    status, _ = _http(server, "POST", f"/v1/models/{MODEL}:predict",
                      b'{"inputs": "' + b"x" * (5 * 1024 * 1024) + b'"}')
    assert status == 413


def _http(server: RunningServer, method: str, path: str, body=None):
    host, port = server.rest_target.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    try:
        connection.request(method, path, body=payload,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    return response.status, json.loads(raw) if raw else {}


# -- the command line ------------------------------------------------------------------------

def test_recommend_command_prints_a_table(server, listeners, capsys):
    user = listeners[0][0]
    assert commands.main(["recommend", "--server", server.grpc_target, "--user", user,
                          "-k", "5", "--recent", ",".join(listeners[1][0][:2])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"Top 5 recommendations for user '{user}'"
    assert len([line for line in table if line.strip().startswith(("1 ", "5 "))]) == 2
    assert commands.main(["recommend", "--server", server.rest_target, "--protocol", "rest",
                          "--similar", listeners[1][0][0], "-k", "3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["found"] and len(document["tracks"]) == 3
    assert commands.main(["recommend", "--server", server.grpc_target, "--user", user,
                          "-k", "500"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err


# -- a rollout under traffic ---------------------------------------------------------------

def test_a_version_pushed_during_a_request_stream_fails_no_request(server, pushed_model,
                                                                    listeners, tmp_path):
    base = str(tmp_path / "models" / MODEL)
    os.makedirs(base)
    shutil.copytree(pushed_model.path, os.path.join(base, str(pushed_model.version)))
    users, recent = listeners
    # Each client's answers in order: two gRPC streams, then REST (no version: None).
    by_stream: List[List[Optional[int]]] = [[], [], []]
    failures: List[str] = []
    stop = threading.Event()

    def stream(client, answers: List[Optional[int]], limit: int, seconds: float):
        deadline = time.monotonic() + seconds
        for index in range(limit):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                result = client.recommend(users[index % len(users)], recent[index % len(users)],
                                          k=10, timeout_s=10)
                answers.append(result.model_version)
            except ServingClientError as error:
                failures.append(f"{type(client).__name__}: {error}")

    with _serving(server.kind, str(tmp_path / "server"), base, pushed_model.version) as rollout:
        clients = [rollout.grpc(timeout_s=10), rollout.grpc(timeout_s=10),
                   rollout.rest(timeout_s=10)]
        threads = [threading.Thread(target=stream, args=(client, answers, 5000, 120))
                   for client, answers in zip(clients, by_stream, strict=True)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        new_version = int(atomic_pusher.publish(pushed_model.path, base))
        status = rollout.grpc(timeout_s=10)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            states = {s.version: s.state for s in status.model_status()}
            if states.get(new_version) == "AVAILABLE" and \
                    states.get(pushed_model.version) == "END":
                break
            time.sleep(0.2)
        # Traffic after the switch: until the new version has answered (a fixed second let
        # requests sent before the switch end last on a loaded machine, and none after it).
        after = time.monotonic() + 60
        while not any(new_version in answers for answers in by_stream) and \
                time.monotonic() < after:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for client in clients + [status]:
            client.close()
    assert not failures, failures[:5]
    assert states == {new_version: "AVAILABLE", pushed_model.version: "END"}
    grpc_versions = by_stream[0] + by_stream[1]
    assert new_version in grpc_versions
    for answers in by_stream[:2]:  # the gRPC streams: from the old version; once on the new,
        assert answers[0] == pushed_model.version  # never back to the old
        assert answers == sorted(answers) and set(answers) <= {pushed_model.version, new_version}
    assert sum(len(answers) for answers in by_stream) > 20


# -- retries (no server needed) --------------------------------------------------------------

class _FlakyClient(GrpcClient):
    def __init__(self, errors, **options):
        super().__init__("127.0.0.1:1", **options)
        self.errors = list(errors)
        self.attempts = 0

    def _predict(self, signature_name, inputs, version, label, timeout_s):
        self.attempts += 1
        if self.errors:
            raise ServingClientError(self.errors.pop(0), "injected")
        rows = len(inputs["user_id"]) if "user_id" in inputs else len(inputs["track_id"])
        ids = np.array([[b"a", b"b", b"c"]] * rows, dtype=object)
        return {"track_ids": ids, "scores": np.ones((rows, 3), np.float32),
                "found": np.ones(rows, bool)}, 7


def test_retries_unavailable_only_within_the_deadline():
    unavailable = grpc.StatusCode.UNAVAILABLE
    client = _FlakyClient([unavailable, unavailable], retries=3, backoff_s=0.001)
    assert client.recommend("u", k=2).track_ids == ["a", "b"]
    assert client.attempts == 3
    client = _FlakyClient([grpc.StatusCode.INVALID_ARGUMENT], retries=3, backoff_s=0.001)
    with pytest.raises(ServingClientError):
        client.similar_tracks("t")
    assert client.attempts == 1
    client = _FlakyClient([unavailable] * 10, retries=2, backoff_s=0.001)
    with pytest.raises(ServingClientError) as error:
        client.recommend("u")
    assert error.value.code == unavailable and client.attempts == 3


def test_no_server_is_unavailable_and_deadlines_hold():
    port = portpicker.pick_unused_port()
    for client in (GrpcClient(f"127.0.0.1:{port}", timeout_s=1.0, backoff_s=0.01),
                   RestClient(f"127.0.0.1:{port}", timeout_s=1.0, backoff_s=0.01)):
        started = time.monotonic()
        with pytest.raises(ServingClientError) as error:
            client.recommend("u")
        assert error.value.code in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED)
        assert time.monotonic() - started < 30  # bounded by the deadline, not hanging
        client.close()
    with pytest.raises(ValueError):
        GrpcClient("127.0.0.1:1", version=1, label="stable")


# -- the `recommend` signature and its controls ----------------------------------------------

def _model_signatures(saved_model) -> set:
    return set(saved_model.signatures.keys())


def test_recommend_with_neutral_controls_matches_serving_default(server, saved_model,
                                                                  listeners):
    if signatures.RECOMMEND not in _model_signatures(saved_model):
        pytest.skip("the pushed model has no recommend signature yet (trainer/export.py)")
    function = saved_model.signatures[signatures.RECOMMEND]
    specs = function.structured_input_signature[1]
    built = signatures.recommend_controls_inputs(["u"])
    assert set(specs) == set(built)  # every input the contract names, and no other
    for name, value in built.items():
        assert value.dtype == object or value.dtype == specs[name].dtype.as_numpy_dtype, name
    assert set(function.structured_outputs) == {"track_ids", "scores", "titles", "artists",
                                                "propensities"}
    users, recent = listeners
    for protocol in ("grpc", "rest"):
        with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                     timeout_s=30) as client:
            result = client.recommend(users[0], recent[0], 10, platform="android",
                                      timestamp=TIMESTAMP)
        expected = _in_process(saved_model, signatures.SERVING_DEFAULT,
                               signatures.recommend_inputs([users[0]], [recent[0]], 10,
                                                           "android", TIMESTAMP))
        assert result.signature_name == signatures.RECOMMEND
        assert result.track_ids == [t.decode() for t in expected["track_ids"][0]]
        assert all(track.title for track in result.tracks), protocol
        assert [track.propensity for track in result.tracks] == [1.0] * 10


def test_recommend_controls_reach_the_pushed_model(server, saved_model, listeners):
    assert signatures.RECOMMEND in _model_signatures(saved_model)
    users, recent = listeners
    with server.grpc(timeout_s=30) as client:
        plain = client.recommend(users[0], recent[0], 10, timestamp=TIMESTAMP)
        excluded = client.recommend(users[0], recent[0], 10, timestamp=TIMESTAMP,
                                    exclude=plain.track_ids[:3], exclude_listened=True)
        assert not set(excluded.track_ids) & set(plain.track_ids[:3] + recent[0])
        explored = [client.recommend(users[0], recent[0], 10, timestamp=TIMESTAMP,
                                     explore=0.5, diversity=0.3, seed=42) for _ in range(2)]
        assert explored[0].tracks == explored[1].tracks  # a fixed seed replays
        assert all(0.0 < track.propensity <= 1.0 for track in explored[0].tracks)
    # Past the client's own checks: the model graph refuses them, over either protocol.
    neutral = signatures.recommend_controls_inputs([users[0]])
    bad = {**neutral, "released_within_days": np.array([-1], np.int32)}
    unchecked = {**neutral, "diversity": np.array([1.5], np.float32)}
    for connect_to, status in ((server.grpc, None), (server.rest, 400)):
        with connect_to(timeout_s=30) as client:
            for inputs, message in ((bad, "released_within_days must be >= 0"),
                                    (unchecked, "diversity must be in")):
                with pytest.raises(ServingClientError) as error:
                    client.predict(signatures.RECOMMEND, inputs)
                assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
                assert error.value.http_status == status and message in error.value.message


def test_a_new_releases_shelf_holds_only_tracks_of_its_window(server, pushed_model,
                                                              listeners):
    with open(os.path.join(pushed_model.data_dir, "catalogue.csv")) as handle:
        released = {row["track_id"]: np.datetime64(row["release_date"], "D").astype(int)
                    for row in csv.DictReader(handle)}
    day = max(released.values()) + 2  # two days after the newest release
    window = {track for track, release in released.items() if 0 <= day - release < 7}
    assert window, "the simulator's catalogue has releases in its last week"
    users, recent = listeners
    with server.grpc(timeout_s=30) as client:
        shelf = client.recommend(users[0], recent[0], 50, timestamp=int(day) * 86400 + 3600,
                                 released_within_days=7)
    assert set(shelf.track_ids) - {""} <= window
    assert len(set(shelf.track_ids) - {""}) == min(50, len(window))


class _RecommendModel(tf.Module):
    """A stand-in with `recommend` as the contract has it, over five titled tracks: scores
    fall with the catalogue row, exclusions are removed (rows padded with ""), and
    propensities are 1 - explore, so a test sees each control arrive."""

    IDS = [f"spotify:track:r{i}" for i in range(5)]

    def __init__(self):
        super().__init__()
        self.ids = tf.constant(self.IDS)
        self.titles = tf.constant([f"Title {i}" for i in range(5)])
        self.artists = tf.constant(["Artist A", "Artist B", "", "Artist D", "Artist E"])

    @tf.function(input_signature=(export.QUERY_INPUT_SIGNATURE + (export.K_INPUT,)
                                  + export.CONTROL_INPUT_SIGNATURE))
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k, exclude_track_ids,
                  diversity, explore, seed, released_within_days, probe):
        count = tf.reduce_max(tf.where(k > 0, k, 10))
        excluded = tf.reduce_any(tf.equal(self.ids[None, :, None],
                                          exclude_track_ids[:, None, :]), axis=2)
        base = tf.cast(5 - tf.range(5), tf.float32)[None, :] - diversity[:, None]
        top = tf.math.top_k(tf.where(excluded, -1e9, base), k=count)
        kept = top.values > -1e8
        return {"track_ids": tf.where(kept, tf.gather(self.ids, top.indices), ""),
                "scores": top.values,
                "titles": tf.where(kept, tf.gather(self.titles, top.indices), ""),
                "artists": tf.where(kept, tf.gather(self.artists, top.indices), ""),
                "propensities": tf.broadcast_to(1.0 - explore[:, None], tf.shape(top.values))}


@pytest.fixture(scope="module")
def in_process_servers(tmp_path_factory):
    """An in-process local server with model `old` (the toy model: no `recommend`) and
    model `new` (`_RecommendModel`, `recommend` only)."""
    from crossfade.serving import toy_model
    from crossfade.serving.conftest import TOY_TRACKS
    from crossfade.serving.model_config import ModelConfig
    from crossfade.serving.model_server import ModelServer, ServerOptions
    root = tmp_path_factory.mktemp("recommend-models")
    toy_model.save_toy_model(str(root / "old" / "1"), TOY_TRACKS, warmup_users=None)
    module = _RecommendModel()
    tf.saved_model.save(module, str(root / "new" / "1"), signatures={
        signatures.RECOMMEND: module.recommend.get_concrete_function()})
    running = ModelServer([ModelConfig("old", str(root / "old")),
                           ModelConfig("new", str(root / "new"))],
                          ServerOptions(grpc_port=0, rest_port=0)).start(wait_seconds=60)
    yield running
    running.stop()


def _in_process_client(servers, protocol: str, model: str):
    port = servers.grpc_port if protocol == "grpc" else servers.rest_port
    return connect(f"127.0.0.1:{port}", protocol, model_name=model, timeout_s=30)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_recommend_sends_the_controls_and_reads_titles(in_process_servers, protocol):
    ids = _RecommendModel.IDS
    with _in_process_client(in_process_servers, protocol, "new") as client:
        result = client.recommend("u1", [ids[1]], 3, exclude=[ids[0]], diversity=0.25,
                                  explore=0.2, seed=9, exclude_listened=True)
        assert result.signature_name == signatures.RECOMMEND
        assert result.track_ids == ids[2:5]  # r0 excluded, r1 listened
        assert [(t.title, t.artist) for t in result.tracks] == [
            ("Title 2", ""), ("Title 3", "Artist D"), ("Title 4", "Artist E")]
        assert [t.score for t in result.tracks] == pytest.approx([2.75, 1.75, 0.75])
        assert [t.propensity for t in result.tracks] == pytest.approx([0.8] * 3)
        # fewer eligible tracks than k: the "" padding is dropped
        short = client.recommend("u1", k=4, exclude=ids[1:])
        assert short.track_ids == [ids[0]]
        assert client.recommend("u1", [ids[0]], k=2).track_ids == ids[:2]  # listened kept
        many = client.recommend_many(["u1", "u2"], k=2, exclude=[[ids[0]], None])
        assert [r.track_ids for r in many] == [ids[1:3], ids[:2]]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_a_model_without_recommend_answers_through_serving_default(in_process_servers,
                                                                   protocol):
    from crossfade.serving.conftest import TOY_TRACKS
    with _in_process_client(in_process_servers, protocol, "old") as client:
        result = client.recommend("u1", [TOY_TRACKS[0]], 5, exclude_listened=False)
        expected, _ = client.predict(signatures.SERVING_DEFAULT, signatures.recommend_inputs(
            ["u1"], [[TOY_TRACKS[0]]], 5))
        assert result.signature_name == signatures.SERVING_DEFAULT
        assert result.track_ids == [_text(t) for t in expected["track_ids"][0]]
        assert {(t.title, t.artist, t.propensity) for t in result.tracks} == {("", "", 1.0)}
        # exclude_listened without listened tracks asks for nothing the old model lacks
        assert client.recommend("u1", k=5, exclude_listened=True).track_ids
        for controls in ({"exclude": [TOY_TRACKS[1]]}, {"diversity": 0.3}, {"explore": 0.1},
                         {"seed": 3}, {"exclude_listened": True}):
            with pytest.raises(ServingClientError) as error:
                client.recommend("u1", [TOY_TRACKS[0]], 5, **controls)
            assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION, controls
            assert "predates the 'recommend' signature" in error.value.message


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- fallback bookkeeping (no server needed) --------------------------------------------------

class _OldModelClient(GrpcClient):
    """A client whose "server" has no `recommend` signature, with TF Serving's messages."""

    def __init__(self, message='Serving signature key "recommend" not found.',
                 code=grpc.StatusCode.FAILED_PRECONDITION, **options):
        super().__init__("127.0.0.1:1", **options)
        self.message, self.code = message, code
        self.calls: List[str] = []

    def _predict(self, signature_name, inputs, version, label, timeout_s):
        self.calls.append(signature_name)
        if signature_name == signatures.RECOMMEND:
            raise ServingClientError(self.code, self.message)
        rows = len(inputs["user_id"])
        assert set(inputs) == set(signatures.recommend_inputs(["u"]))
        return {"track_ids": np.array([[b"a", b"b"]] * rows, dtype=object),
                "scores": np.ones((rows, 2), np.float32)}, 3


def test_the_fallback_is_remembered_for_a_while(monkeypatch):
    from crossfade.serving import client as client_module
    client = _OldModelClient()
    assert client.recommend("u", k=2).track_ids == ["a", "b"]
    assert client.recommend("u", k=2).signature_name == signatures.SERVING_DEFAULT
    assert client.calls == [signatures.RECOMMEND, signatures.SERVING_DEFAULT,
                            signatures.SERVING_DEFAULT]  # the second call skips recommend
    client.recommend("u", k=2, label="canary")  # another version choice is asked afresh
    assert client.calls[3:] == [signatures.RECOMMEND, signatures.SERVING_DEFAULT]
    with pytest.raises(ServingClientError):  # a control is always tried on `recommend`
        client.recommend("u", k=2, diversity=0.5)
    assert client.calls[-1] == signatures.RECOMMEND
    monkeypatch.setattr(client_module, "SIGNATURE_RECHECK_S", 0.0)
    client = _OldModelClient()
    client.recommend("u")
    client.recommend("u")
    assert client.calls.count(signatures.RECOMMEND) == 2  # expired: asked again


def test_only_a_missing_recommend_signature_falls_back():
    rest_message = 'Serving signature name: "recommend" not found in signature def'
    client = _OldModelClient(rest_message, grpc.StatusCode.INVALID_ARGUMENT)
    assert client.recommend("u", k=2).signature_name == signatures.SERVING_DEFAULT
    for code, message in ((grpc.StatusCode.INVALID_ARGUMENT, "k must be at most 100"),
                          (grpc.StatusCode.NOT_FOUND, "Servable not found for request"),
                          (grpc.StatusCode.FAILED_PRECONDITION,
                           'Serving signature key "serving_default" not found.')):
        client = _OldModelClient(message, code)
        with pytest.raises(ServingClientError) as error:
            client.recommend("u")
        assert (error.value.code, error.value.message) == (code, message)
        assert client.calls == [signatures.RECOMMEND]


def test_bad_controls_fail_before_any_call():
    client = _OldModelClient()
    for controls in ({"diversity": 1.5}, {"explore": float("nan")}, {"exclude": "t1"}):
        with pytest.raises(ValueError):
            client.recommend("u", **controls)
    assert client.calls == []


def test_http_statuses_map_to_tf_servings_codes():
    from crossfade.serving import errors
    from crossfade.serving.client import _CODE_OF_HTTP
    assert _CODE_OF_HTTP[400] == grpc.StatusCode.INVALID_ARGUMENT
    assert _CODE_OF_HTTP[409] == grpc.StatusCode.ABORTED
    assert _CODE_OF_HTTP[500] == grpc.StatusCode.INTERNAL
    assert _CODE_OF_HTTP[413] == _CODE_OF_HTTP[429] == grpc.StatusCode.RESOURCE_EXHAUSTED
    for status, code in _CODE_OF_HTTP.items():  # the inverse of errors' table
        assert status == 413 or errors.http_status(code) == status
    assert set(_CODE_OF_HTTP) == {errors.http_status(c) for c in grpc.StatusCode
                                  if c != grpc.StatusCode.OK} | {413}


def test_simulate_through_a_server_answers_as_the_export_in_process(server, pushed_model,
                                                                    tmp_path):
    """`crossfade simulate --server`: the same lists, so the same simulated listening, as
    the SavedModel loaded in process (the server applies the same graph to the same
    requests, exploration seeds included)."""
    from crossfade.components.simulation import experiment
    from crossfade.pipeline.simulation import command
    settings = experiment.SimulationSettings(users=40, days=2, k=10)
    results = [command.simulate(pushed_model.data_dir, pushed_model.base_path,
                                ["model:explore=0.1"], str(tmp_path / name), settings,
                                server=target)
               for name, target in (("server", server.grpc_target), ("in-process", None))]
    through_server, in_process = (r["policies"]["model:explore=0.1"] for r in results)
    assert through_server["source"] == f"grpc://{server.grpc_target}"
    assert through_server["summary"] == in_process["summary"]
    assert 0 < in_process["summary"]["stream_rate"] < 1


# -- blend -----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_blend_answers_as_the_saved_model_and_says_for_whom(server, saved_model, listeners,
                                                            protocol):
    group = listeners[0][:2]
    with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                 timeout_s=30) as client:
        for strategy in sorted(signatures.BLEND_STRATEGIES):
            result = client.blend(group, k=20, strategy=strategy, platform="android",
                                  timestamp=TIMESTAMP, exclude=[listeners[1][0][0]])
            expected = _in_process(saved_model, signatures.BLEND, signatures.blend_inputs(
                [group], None, 20, strategy, "android", TIMESTAMP, [[listeners[1][0][0]]]))
            assert result.track_ids == [_text(t) for t in expected["track_ids"][0]]
            assert listeners[1][0][0] not in result.track_ids and len(result.tracks) == 20
            np.testing.assert_allclose([t.score for t in result.tracks],
                                       expected["scores"][0], rtol=1e-5, atol=1e-6)
            assert [t.for_member for t in result.tracks] == [
                group[m] for m in expected["for_member"][0]]
            assert all(len(t.member_scores) == 2 for t in result.tracks)
        fair = client.blend(group, k=6, strategy="fair-interleave", timestamp=TIMESTAMP)
        assert [t.for_member for t in fair.tracks] == [group[0], group[1]] * 3


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_bad_blends_are_invalid_argument_from_the_model(server, protocol):
    inputs = signatures.blend_inputs([["a", "b"]], k=5)
    inputs["user_ids"] = np.array([[b"u%d" % i for i in range(6)]], dtype=object)
    inputs["recent_track_ids"] = np.full((1, 6, 1), b"", dtype=object)
    with connect(getattr(server, f"{protocol}_target"), protocol, model_name=MODEL,
                 timeout_s=30) as client:
        with pytest.raises(ServingClientError, match="at most 5 members") as error:
            client.predict(signatures.BLEND, inputs)
        assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
        if protocol == "rest":
            assert error.value.http_status == 400
        with pytest.raises(ValueError, match="1 to 5 members"):
            client.blend([f"u{i}" for i in range(6)])
        with pytest.raises(ValueError, match="not one of"):
            client.blend(["a", "b"], strategy="loudest")


def test_recommend_command_prints_a_blend(server, listeners, capsys):
    group = listeners[0][:2]
    assert commands.main(["recommend", "--server", server.grpc_target, "--blend",
                          ",".join(group), "-k", "4", "--strategy", "fair-interleave"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"Blend of 4 tracks for {', '.join(group)} (fair-interleave)"
    assert table[3].split()[-2:] == ["for", "score"]
    assert [line.split()[-2] for line in table[5:9]] == [group[0], group[1]] * 2
    assert commands.main(["recommend", "--server", server.grpc_target, "--blend", group[0]]) == 2
    assert "2 to 5 user ids" in capsys.readouterr().err
    assert commands.main(["recommend", "--server", server.grpc_target, "--blend",
                          ",".join(group), "--diversity", "0.3"]) == 2
    assert "apply to --user, not --blend" in capsys.readouterr().err
