"""TF Serving's REST JSON tensors: row and columnar requests, responses, b64, errors."""
import json

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from crossfade.serving import json_tensors
from crossfade.serving.errors import ServingError


def _signature(**dtypes) -> meta_graph_pb2.SignatureDef:
    signature = meta_graph_pb2.SignatureDef()
    for name, dtype in dtypes.items():
        signature.inputs[name].dtype = dtype
    return signature


RECOMMEND = _signature(user_id=types_pb2.DT_STRING, recent_track_ids=types_pb2.DT_STRING,
                       timestamp=types_pb2.DT_INT64, k=types_pb2.DT_INT32)


def _invalid(document, signature=RECOMMEND) -> str:
    with pytest.raises(ServingError) as error:
        json_tensors.inputs_from_request(document, signature)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return error.value.message


def test_row_and_columnar_requests_give_the_same_tensors():
    rows = {"instances": [
        {"user_id": "u1", "recent_track_ids": ["a", "b"], "timestamp": 5, "k": 3},
        {"user_id": {"b64": "dTI="}, "recent_track_ids": ["c", ""], "timestamp": 0, "k": 3}]}
    columns = {"inputs": {"user_id": ["u1", "u2"], "recent_track_ids": [["a", "b"], ["c", ""]],
                          "timestamp": [5, 0], "k": [3, 3]}}
    by_rows, row_format = json_tensors.inputs_from_request(rows, RECOMMEND)
    by_columns, columnar = json_tensors.inputs_from_request(columns, RECOMMEND)
    assert row_format and not columnar
    for name in by_rows:
        np.testing.assert_array_equal(by_rows[name], by_columns[name])
    assert by_rows["user_id"].tolist() == [b"u1", b"u2"]
    assert by_rows["recent_track_ids"].shape == (2, 2)
    assert by_rows["k"].dtype == np.int32 and by_rows["timestamp"].dtype == np.int64


def test_single_input_signatures_take_bare_values():
    single = _signature(track_id=types_pb2.DT_STRING)
    inputs, _ = json_tensors.inputs_from_request({"instances": ["a", "b"]}, single)
    assert inputs["track_id"].tolist() == [b"a", b"b"]
    inputs, _ = json_tensors.inputs_from_request({"inputs": [{"b64": "eA=="}]}, single)
    assert inputs["track_id"].tolist() == [b"x"]


@pytest.mark.parametrize("document,fragment", [
    ({}, "Missing 'inputs' or 'instances' key"),
    ({"instances": [], "inputs": {}}, "Not both"),
    ({"instances": []}, "non-empty"),
    ({"instances": [{"user_id": "u", "recent_track_ids": ["a"], "timestamp": 0}]},
     "missing: {k}"),
    ({"instances": [{"user_id": "u", "recent_track_ids": ["a"], "timestamp": 0, "k": "ten"}]},
     'JSON Value: "ten" Type: String is not of expected type: int32'),
    ({"instances": [{"user_id": 1, "recent_track_ids": ["a"], "timestamp": 0, "k": 1}]},
     "is not of expected type: string"),
    ({"inputs": {"k": [2 ** 31]}}, "out of range for DT_INT32"),
    ({"inputs": {"k": [1.5]}}, "is not of expected type: int32"),
    ({"inputs": {"recent_track_ids": [["a", "b"], ["c"]]}}, "same shape"),
    ({"inputs": {"user_id": [{"b64": "%%%"}]}}, "invalid base64"),
    ({"inputs": {"nope": [1]}}, "Sent extra: {nope}"),
    ({"inputs": ["u1"]}, "must be an object keyed by input name"),
])
def test_bad_requests_are_invalid_arguments(document, fragment):
    assert fragment in _invalid(document)


def test_parse_body_and_signature_name():
    assert json_tensors.parse_body(b'{"signature_name": "x", "inputs": 1}')["inputs"] == 1
    for body in (b"{nope", b"[1, 2]", b"\xff"):
        with pytest.raises(ServingError, match="JSON"):
            json_tensors.parse_body(body)
    with pytest.raises(ServingError, match="'signature_name' key must be a string value."):
        json_tensors.signature_name({"signature_name": 100})


def test_response_documents():
    outputs = {"track_ids": np.array([[b"a", b"b"], [b"c", b"\xff"]], dtype=object),
               "scores": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32),
               "found": np.array([True, False])}
    rows = json_tensors.response_document(outputs, row_format=True)
    assert rows["predictions"][0] == {"track_ids": ["a", "b"], "scores": [0.1, 0.2],
                                      "found": True}
    assert rows["predictions"][1]["track_ids"][1] == {"b64": "/w=="}  # not UTF-8
    columns = json_tensors.response_document(outputs, row_format=False)
    assert columns["outputs"]["scores"] == [[0.1, 0.2], [0.3, 0.4]]
    single = json_tensors.response_document({"y_bytes": np.array([b"x"], dtype=object)}, True)
    assert single == {"predictions": [{"b64": "eA=="}]}
    json.dumps(rows)  # serializable as is
    with pytest.raises(ServingError, match="0th dimension"):
        json_tensors.response_document({"a": np.zeros(2), "b": np.zeros(3)}, True)


@pytest.mark.parametrize("body", [
    b"[" * 100_000,  # the probe's body: used to escape as RecursionError, HTTP 500
    b'{"inputs": {"k": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}}",
    b'{"a": ' * 100_000,
], ids=["arrays", "tensor", "objects"])
def test_bodies_nested_too_deep_to_parse_are_invalid_arguments(body):
    with pytest.raises(ServingError, match="nested too deep") as error:
        json_tensors.parse_body(body)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_tensor_values_nest_at_most_max_nesting_deep():
    limit = json_tensors.MAX_NESTING
    deep = 1
    for _ in range(limit):
        deep = [deep]
    assert json_tensors.to_array(deep, types_pb2.DT_INT32, "'inputs'").ndim == limit
    # Deeper than the limit, even far deeper than Python's recursion limit: no recursion.
    for depth in (limit + 1, 100_000):
        value = 1
        for _ in range(depth):
            value = [value]
        assert f"nested more than {limit} lists deep" in _invalid({"inputs": {"k": value}})
    # A deep object where a string is expected is reported without walking all of it.
    value = "x"
    for _ in range(100_000):
        value = {"a": value}
    assert "Type: Object is not of expected type: string" in _invalid(
        {"inputs": {"user_id": [value]}})
