"""TensorProto <-> numpy conversions."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from crossfade.serving import tensor_proto
from crossfade.serving.errors import ServingError


@pytest.mark.parametrize("value", [
    np.array([[b"a", b"bc"], [b"", b"\xff"]], dtype=object),
    np.array([1, -2, 3], dtype=np.int32),
    np.array([[0, 2 ** 40]], dtype=np.int64),
    np.array([0.5, np.nan, np.inf], dtype=np.float32),
    np.array([True, False]),
    np.zeros((0, 3), dtype=np.float32),
])
def test_round_trip_and_agreement_with_tensorflow(value):
    proto = tensor_proto.from_ndarray(value)
    back = tensor_proto.to_ndarray(proto)
    np.testing.assert_array_equal(back, value)
    assert back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(tf.make_ndarray(proto), value)  # TF reads ours
    np.testing.assert_array_equal(tensor_proto.to_ndarray(tf.make_tensor_proto(value)), value)


def test_strings_from_str_and_a_single_value_fills_the_shape():
    proto = tensor_proto.from_ndarray(np.array(["x", "y"]))
    assert proto.dtype == types_pb2.DT_STRING and list(proto.string_val) == [b"x", b"y"]
    filled = tf.make_tensor_proto(7, dtype=tf.int32, shape=[2, 2])
    np.testing.assert_array_equal(tensor_proto.to_ndarray(filled), np.full((2, 2), 7))


def test_values_that_do_not_fill_the_shape_are_invalid():
    proto = tensor_proto.from_ndarray(np.array([1, 2, 3], dtype=np.int32))
    proto.tensor_shape.dim[0].size = 5
    with pytest.raises(ServingError) as error:
        tensor_proto.to_ndarray(proto)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    content = tf.make_tensor_proto(np.arange(4, dtype=np.float32))
    content.tensor_content = content.tensor_content[:-1]
    with pytest.raises(ServingError, match="tensor_content"):
        tensor_proto.to_ndarray(content)


def test_a_dtype_without_a_numpy_twin_is_invalid_not_internal():
    proto = tensor_proto.from_ndarray(np.array([1], dtype=np.int32))
    proto.dtype = types_pb2.DT_VARIANT
    with pytest.raises(ServingError) as error:
        tensor_proto.to_ndarray(proto)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
