"""numpy arrays <-> `tensorflow.TensorProto`, the tensors of TF Serving's gRPC messages.

Strings are numpy object arrays of `bytes`. Decoding accepts every encoding TF Serving accepts
(typed value fields or `tensor_content`, a single value standing for a whole tensor); encoding
writes typed value fields, as TF Serving writes its responses (`Tensor::AsProtoField`). The
common dtypes take a direct path: `tf.make_tensor_proto` costs several times more per request.
"""
import math
from typing import Optional

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from crossfade.serving.errors import invalid_argument

# dtype enum -> (numpy dtype, TensorProto value field)
_FIELDS = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}
_FROM_NUMPY = {np.dtype(numpy_type): enum for enum, (numpy_type, _) in _FIELDS.items()}


def dtype_name(dtype: int) -> str:
    """'DT_INT32' for types_pb2.DT_INT32, as TF Serving names dtypes in messages."""
    return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() \
        else f"dtype {dtype}"


def dtype_of(value: np.ndarray) -> int:
    """The TensorFlow dtype enum of a numpy array (object/bytes/str arrays are DT_STRING)."""
    if value.dtype.kind in "OSU":
        return types_pb2.DT_STRING
    return _FROM_NUMPY.get(value.dtype, types_pb2.DT_INVALID)


def shape_of(proto: tensor_pb2.TensorProto) -> tuple:
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument("tensor shapes must be fully defined (unknown_rank is set)")
    return tuple(dim.size for dim in proto.tensor_shape.dim)


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The value of `proto`; INVALID_ARGUMENT when its values do not fill its shape."""
    shape = shape_of(proto)
    if any(size < 0 for size in shape):
        raise invalid_argument(f"tensor shape {list(shape)} has a negative dimension")
    size = math.prod(shape)
    if proto.dtype == types_pb2.DT_STRING:
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = proto.string_val[:]  # a slice copies in C; iterating goes through Python
    elif proto.dtype in _FIELDS:
        numpy_type, field = _FIELDS[proto.dtype]
        if proto.tensor_content:
            if len(proto.tensor_content) != size * np.dtype(numpy_type).itemsize:
                raise invalid_argument(
                    f"tensor_content holds {len(proto.tensor_content)} bytes, shape "
                    f"{list(shape)} of {dtype_name(proto.dtype)} needs "
                    f"{size * np.dtype(numpy_type).itemsize}")
            return np.frombuffer(proto.tensor_content, dtype=numpy_type).reshape(shape)
        values = np.asarray(getattr(proto, field)[:], dtype=numpy_type)
    else:
        return _slow_to_ndarray(proto)
    if len(values) == size:
        return values.reshape(shape)
    if size == 0:
        return np.empty(shape, dtype=values.dtype)
    if len(values) == 1:
        # TensorProto semantics: one value stands for every element.
        return np.full(shape, values[0], dtype=values.dtype)
    raise invalid_argument(f"tensor of shape {list(shape)} needs {size} values, got "
                           f"{len(values)}")


def _slow_to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    import tensorflow as tf  # only for rare dtypes (half, complex, ...)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError, KeyError) as error:  # KeyError: no numpy twin (DT_VARIANT)
        raise invalid_argument(
            f"cannot decode a {dtype_name(proto.dtype)} tensor: {error}") from None


def from_ndarray(value: np.ndarray, dtype: Optional[int] = None) -> tensor_pb2.TensorProto:
    """`value` as a TensorProto with typed value fields; strings may be bytes or str."""
    value = np.asarray(value)
    if dtype is None:
        dtype = dtype_of(value)
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in value.shape]))
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(
            item if isinstance(item, bytes) else str(item).encode() for item in value.ravel())
    elif dtype in _FIELDS:
        numpy_type, field = _FIELDS[dtype]
        getattr(proto, field).extend(value.astype(numpy_type, copy=False).ravel().tolist())
    else:
        import tensorflow as tf
        return tf.make_tensor_proto(value)
    return proto
