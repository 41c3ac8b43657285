"""The local model server's APIs in process, on small stand-in models: REST shapes and status
codes, gRPC services, limits, warmup on load, concurrent requests."""
import gc
import http.client
import json
import os
import shutil
import threading
import weakref

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import gen_lookup_ops
from tensorflow.python.trackable.resource import CapturableResource
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from crossfade.serving import signatures, tensor_proto, warmup
from crossfade.serving.conftest import TOY_TRACKS
from crossfade.serving.model_config import ModelConfig, VersionPolicy
from crossfade.serving.model_server import ModelServer, ServerOptions
from crossfade.serving.servable import RequestLimits


@pytest.fixture
def server(toy_versions):
    base = toy_versions(1, 2)
    options = ServerOptions(grpc_port=0, rest_port=0, poll_seconds=0.2,
                            limits=RequestLimits(max_rows=64, max_k=100),
                            max_request_bytes=64 * 1024)
    config = ModelConfig("toy", base, VersionPolicy("all"), {"stable": 1, "canary": 2})
    running = ModelServer([config], options).start(wait_seconds=60)
    yield running
    running.stop()


def _http(server, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload)
    response = connection.getresponse()
    document = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, document


def test_binds_loopback_by_default():
    assert ServerOptions().host == "127.0.0.1"
    assert (ServerOptions().grpc_port, ServerOptions().rest_port) == (8500, 8501)


def test_rest_status_and_metadata(server):
    status, document = _http(server, "GET", "/v1/models/toy")
    assert status == 200
    assert document == {"model_version_status": [
        {"version": str(v), "state": "AVAILABLE",
         "status": {"error_code": "OK", "error_message": ""}} for v in (2, 1)]}
    assert _http(server, "GET", "/v1/models/toy/versions/1")[1]["model_version_status"][0][
        "version"] == "1"
    assert _http(server, "GET", "/v1/models/toy/labels/canary")[1]["model_version_status"][0][
        "version"] == "2"
    status, metadata = _http(server, "GET", "/v1/models/toy/labels/stable/metadata")
    assert status == 200
    assert metadata["model_spec"] == {"name": "toy", "signature_name": "", "version": "1"}
    signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "similar_tracks"} <= set(signature_defs)  # + init op
    assert signature_defs["serving_default"]["inputs"]["k"]["dtype"] == "DT_INT32"


def test_rest_predict_row_and_columnar(server):
    rows = {"instances": [{"user_id": "u1", "recent_track_ids": ["", ""], "timestamp": 0,
                           "platform": "", "k": 3}]}
    status, by_rows = _http(server, "POST", "/v1/models/toy:predict", rows)
    assert status == 200 and len(by_rows["predictions"]) == 1
    prediction = by_rows["predictions"][0]
    assert len(prediction["track_ids"]) == 3 and set(prediction["track_ids"]) <= set(TOY_TRACKS)
    columns = {"inputs": {"user_id": ["u1"], "recent_track_ids": [["", ""]], "timestamp": [0],
                          "platform": [{"b64": ""}], "k": [3]}}
    status, by_columns = _http(server, "POST", "/v1/models/toy/versions/2:predict", columns)
    assert status == 200
    assert by_columns["outputs"]["track_ids"] == [prediction["track_ids"]]
    similar = {"signature_name": "similar_tracks",
               "inputs": {"track_id": [TOY_TRACKS[0], "unknown"], "k": [2, 2]}}
    status, document = _http(server, "POST", "/v1/models/toy/labels/stable:predict", similar)
    assert status == 200 and document["outputs"]["found"] == [True, False]


@pytest.mark.parametrize("method,path,body,status,fragment", [
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/toy/versions/9", None, 404, "Could not find version 9 of model toy"),
    ("GET", "/v1/models/toy/labels/beta", None, 400, "Unrecognized servable version label"),
    ("POST", "/v1/models/toy:explain", {}, 400, "Malformed request: POST /v1/models/toy"),
    ("GET", "/elsewhere", None, 404, "Not found"),
    ("POST", "/v1/models/toy:classify", {}, 501, "not implemented"),
    ("POST", "/v1/models/toy:regress", {}, 501, "not implemented"),
    ("POST", "/v1/models/nope:predict", {"instances": [1]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/toy/versions/7:predict", {"instances": [1]}, 404,
     "Servable not found for request: Specific(toy, 7)"),
    ("POST", "/v1/models/toy:predict", b"{not json", 400, "JSON Parse error"),
    ("POST", "/v1/models/toy:predict", b'{"instances": ' + b"[" * 60_000, 400,
     "nested too deep"),
    ("POST", "/v1/models/toy:predict", {"signature_name": "nope", "inputs": {}}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", "/v1/models/toy:predict", {"inputs": {"user_id": ["u"], "k": [1]}}, 400,
     "Missing but required"),
    ("POST", "/v1/models/toy:predict", {"instances": [
        {"user_id": "u", "recent_track_ids": [""], "timestamp": 0, "platform": "",
         "k": 101}]}, 400, "k must be at most 100"),
])
def test_rest_errors(server, method, path, body, status, fragment):
    answered, document = _http(server, method, path, body)
    assert answered == status
    assert fragment in document["error"]


def test_rest_body_size_is_capped(server):
    status, document = _http(server, "POST", "/v1/models/toy:predict",
                             b"{" + b" " * (70 * 1024) + b"}")
    assert status == 413 and "limit" in document["error"]


def _stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return (channel, prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


def _request(inputs, **spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.pop("name", "toy")
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto.from_ndarray(value))
    return request


def _code(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def test_grpc_predict_metadata_and_status(server):
    channel, predictions, models = _stubs(server)
    with channel:
        request = _request(signatures.recommend_inputs(["u1", "u2"], k=4), version_label="stable")
        request.output_filter.append("track_ids")
        response = predictions.Predict(request, timeout=30)
        assert response.model_spec.version.value == 1
        assert response.model_spec.signature_name == "serving_default"
        assert set(response.outputs) == {"track_ids"}
        assert tensor_proto.to_ndarray(response.outputs["track_ids"]).shape == (2, 4)

        metadata = predictions.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec={"name": "toy"}, metadata_field=["signature_def"]), timeout=30)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        assert metadata.metadata["signature_def"].Unpack(signature_map)
        assert {"serving_default", "similar_tracks"} <= set(signature_map.signature_def)
        assert metadata.model_spec.version.value == 2
        code, details = _code(lambda: predictions.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "toy"})))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "metadata_field" in details

        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "toy"}), timeout=30)
        assert [(s.version, s.state) for s in status.model_version_status] == \
            [(2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
             (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def test_grpc_errors_and_unimplemented_methods(server):
    channel, predictions, models = _stubs(server)
    good = signatures.recommend_inputs(["u1"], k=3)
    with channel:
        cases = [
            (_request(good, name="nope"), grpc.StatusCode.NOT_FOUND),
            (_request(good, version=9), grpc.StatusCode.NOT_FOUND),
            (_request(good, version_label="beta"), grpc.StatusCode.INVALID_ARGUMENT),
            (_request(good, signature_name="nope"), grpc.StatusCode.FAILED_PRECONDITION),
            (_request({**good, "k": good["k"].astype(np.int64)}),
             grpc.StatusCode.INVALID_ARGUMENT),
            (_request({k: v for k, v in good.items() if k != "platform"}),
             grpc.StatusCode.INVALID_ARGUMENT),
            (_request({**good, "k": np.array([101], np.int32)}),
             grpc.StatusCode.INVALID_ARGUMENT),
            (_request({**good, "user_id": np.array([[b"u1"]], dtype=object)}),
             grpc.StatusCode.INVALID_ARGUMENT),
            (_request(signatures.recommend_inputs(["u"] * 65)),
             grpc.StatusCode.INVALID_ARGUMENT),
            (predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT),
            (_request({**good, "user_id": np.array([b"x" * 100_000], dtype=object)}),
             grpc.StatusCode.RESOURCE_EXHAUSTED),
        ]
        for request, code in cases:
            assert _code(lambda r=request: predictions.Predict(r, timeout=30))[0] == code
        for call, message in (
                (predictions.Classify, classification_pb2.ClassificationRequest()),
                (predictions.Regress, regression_pb2.RegressionRequest()),
                (predictions.MultiInference, inference_pb2.MultiInferenceRequest()),
                (models.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest())):
            code, details = _code(lambda c=call, m=message: c(m, timeout=30))
            assert code == grpc.StatusCode.UNIMPLEMENTED and "not implemented" in details


def test_concurrent_requests_get_their_own_answers(server):
    channel, predictions, _ = _stubs(server)
    users = [f"user-{i}" for i in range(8)]

    def ask(user, k):
        response = predictions.Predict(
            _request(signatures.recommend_inputs([user], k=k)), timeout=30)
        return tensor_proto.to_ndarray(response.outputs["track_ids"])[0].tolist()

    with channel:
        expected = {(user, k): ask(user, k) for user in users for k in (3, 5)}
        answers, failures = {}, []

        def client(user):
            try:
                for round_ in range(20):
                    k = 3 if round_ % 2 else 5
                    answers[(user, k, round_)] = ask(user, k)
            except Exception as error:  # noqa: BLE001 -- reported by the assertion
                failures.append(error)

        threads = [threading.Thread(target=client, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures
    assert len(answers) == 8 * 20
    for (user, k, _), ids in answers.items():
        assert ids == expected[(user, k)]


def test_warmup_runs_on_load_and_a_failing_warmup_fails_the_version(toy_versions, caplog):
    base = toy_versions(1)
    broken = os.path.join(base, ".staging-2")
    shutil.copytree(os.path.join(base, "1"), broken)
    # A warmup request the model rejects (k above its maximum) fails the load, as in TF Serving.
    log = prediction_log_pb2.PredictionLog()
    for name, value in signatures.recommend_inputs(["u1"], k=500).items():
        log.predict_log.request.inputs[name].CopyFrom(tensor_proto.from_ndarray(value))
    with tf.io.TFRecordWriter(warmup.warmup_path(broken)) as writer:
        writer.write(log.SerializeToString())
    os.rename(broken, os.path.join(base, "2"))
    caplog.set_level("INFO", logger="crossfade.serving")
    options = ServerOptions(grpc_port=0, rest_port=None, limits=RequestLimits(max_k=1000),
                            max_num_load_retries=0)
    running = ModelServer([ModelConfig("toy", base)], options).start(wait_seconds=60)
    try:
        assert running.registry.manager("toy").loaded_versions == [1]
        state = running.registry.states("toy", version=2)[0]
        assert state.state == "END" and "k must be at most 100" in state.error_message
    finally:
        running.stop()
    assert "Finished warming up model toy version 1" in caplog.text


def test_an_unloaded_version_leaves_nothing_behind(toy_versions):
    """The Servable, its loaded model and the model's lookup tables (TF's resource manager
    never frees a restored table on its own: 50 MB a version for the real model) all go."""
    base = toy_versions(1)
    options = ServerOptions(grpc_port=0, rest_port=None)
    server = ModelServer([ModelConfig("toy", base)], options)  # not started: no ports
    server.registry.poll()
    old = server.registry.servable("toy")
    old.run("similar_tracks", signatures.similar_tracks_inputs([TOY_TRACKS[0]], k=3))
    servable_ref, model_ref = weakref.ref(old), weakref.ref(old._model)
    tables = [node.resource_handle for node in tf.train.TrackableView(old._model).descendants()
              if isinstance(node, CapturableResource)]
    assert tables and int(gen_lookup_ops.lookup_table_size_v2(tables[0])) == len(TOY_TRACKS)
    del old
    toy_versions(2, base=base)
    server.registry.poll()
    assert server.registry.manager("toy").loaded_versions == [2]
    gc.collect()
    assert servable_ref() is None and model_ref() is None
    for handle in tables:
        with pytest.raises(tf.errors.NotFoundError):
            gen_lookup_ops.lookup_table_size_v2(handle)


def test_server_options_retry_failed_loads(toy_versions):
    base = toy_versions(1)
    os.makedirs(os.path.join(base, "2"))  # an empty push: every attempt fails
    options = ServerOptions(grpc_port=0, rest_port=None, poll_seconds=0.05,
                            max_num_load_retries=2, load_retry_interval_micros=0)
    assert (ServerOptions().max_num_load_retries,
            ServerOptions().load_retry_interval_micros) == (5, 60_000_000)  # TF Serving's
    server = ModelServer([ModelConfig("toy", base)], options)
    server.registry.poll()
    state = server.registry.states("toy", version=2)[0]
    assert state.state == "END" and "version: 2" in state.error_message
