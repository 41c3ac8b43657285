"""TF Serving's REST JSON tensors <-> numpy, for the `:predict` API.

Request bodies (https://www.tensorflow.org/tfx/serving/api_rest):

* row format: ``{"signature_name": s?, "instances": [row, ...]}`` where each row is an object
  ``{input: value}`` (or the bare value when the signature has a single input); every input
  gets one row per instance, so all inputs share the batch size;
* columnar format: ``{"signature_name": s?, "inputs": {input: value}}`` (or a bare value for a
  single input); inputs may differ in batch size.

Values are nested lists that must be rectangular; strings are JSON strings or
``{"b64": base64}``; integers must be JSON integers of the input's dtype range; floats accept
any number and NaN/Infinity. Responses are ``{"predictions": [...]}`` (row: one object per
row, or bare values for a single output) or ``{"outputs": ...}`` (columnar). String outputs
whose name ends in ``_bytes`` (or that are not UTF-8) are written as ``{"b64": ...}``.
Mistakes are INVALID_ARGUMENT.

Nesting is bounded, so no request can exhaust the stack: a body nested deeper than the JSON
parser's recursion limit (about 900 levels) fails to parse, and a tensor value may nest at most
`MAX_NESTING` lists deep (rank 32, TF Serving's own limit is TensorFlow's 254 dims; nothing
crossfade serves is above rank 2).
"""
import base64
import binascii
import json
import reprlib
import sys
from typing import Any, Dict, List, Mapping, Tuple, Union

import numpy as np
from tensorflow.core.framework import types_pb2

from crossfade.serving.errors import invalid_argument

ROW_KEY, COLUMNAR_KEY = "instances", "inputs"
MAX_NESTING = 32  # lists within one tensor value (its rank)
_INT_RANGES = {
    types_pb2.DT_INT8: (np.int8, -2 ** 7, 2 ** 7 - 1),
    types_pb2.DT_UINT8: (np.uint8, 0, 2 ** 8 - 1),
    types_pb2.DT_INT16: (np.int16, -2 ** 15, 2 ** 15 - 1),
    types_pb2.DT_UINT16: (np.uint16, 0, 2 ** 16 - 1),
    types_pb2.DT_INT32: (np.int32, -2 ** 31, 2 ** 31 - 1),
    types_pb2.DT_UINT32: (np.uint32, 0, 2 ** 32 - 1),
    types_pb2.DT_INT64: (np.int64, -2 ** 63, 2 ** 63 - 1),
    types_pb2.DT_UINT64: (np.uint64, 0, 2 ** 64 - 1),
}
_FLOATS = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64}


def parse_body(body: bytes) -> Dict[str, Any]:
    """The request's JSON object."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_argument(f"JSON Parse error: {error}") from None
    except RecursionError:
        # The C parser guards its recursion with the interpreter's limit: a clean error.
        raise invalid_argument("JSON Parse error: the document is nested too deep "
                               f"(more than about {sys.getrecursionlimit()} levels)") from None
    if not isinstance(document, dict):
        raise invalid_argument("JSON Value is not an object: the request body must be a JSON "
                               "object")
    return document


def signature_name(document: Mapping[str, Any]) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument("'signature_name' key must be a string value.")
    return name


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object" if isinstance(value, dict) else "Null"


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_b64(value: Dict[str, Any], where: str) -> bytes:
    """The bytes of a `{"b64": "..."}` value; anything else is INVALID_ARGUMENT at `where`."""
    if not (_is_b64(value) and isinstance(value["b64"], str)):
        raise invalid_argument(f"{where}: expected {{\"b64\": <base64 string>}}, got "
                               f"{reprlib.repr(value)}")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except binascii.Error as error:
        raise invalid_argument(f"{where}: invalid base64 value: {error}") from None


def _leaf(value, dtype: int, where: str):
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode()
        if _is_b64(value) and isinstance(value["b64"], str):
            return decode_b64(value, where)
    elif dtype in _INT_RANGES:
        _, low, high = _INT_RANGES[dtype]
        if isinstance(value, int) and not isinstance(value, bool):
            if low <= value <= high:
                return value
            raise invalid_argument(f"{where}: JSON Value: {value} is out of range for "
                                   f"{types_pb2.DataType.Name(dtype)}")
    elif dtype in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif dtype == types_pb2.DT_BOOL:
        if isinstance(value, bool):
            return value
    else:
        raise invalid_argument(f"{where}: {types_pb2.DataType.Name(dtype)} inputs are not "
                               "supported over REST")
    expected = types_pb2.DataType.Name(dtype)[3:].lower()
    raise invalid_argument(f"{where}: JSON Value: {_preview(value)} Type: "
                           f"{_json_type(value)} is not of expected type: {expected}")


def _preview(value) -> str:
    """`value` for an error message: JSON for a scalar; an object or array (which may nest
    deep and be large) shortened, its depth bounded by reprlib."""
    if isinstance(value, (dict, list)):
        return reprlib.repr(value)
    return json.dumps(value)


def _flatten(value, where: str) -> Tuple[Tuple[int, ...], List[Any]]:
    """(shape, leaves in row-major order) of a nested list; it must be rectangular and nest
    at most MAX_NESTING deep. Level by level, without recursion: request data sets the depth."""
    shape: List[int] = []
    level = [value]
    while isinstance(level[0], list):
        if len(shape) == MAX_NESTING:
            raise invalid_argument(f"{where}: the value is nested more than {MAX_NESTING} "
                                   f"lists deep (tensors of rank above {MAX_NESTING})")
        size = len(level[0])
        if any(not isinstance(item, list) or len(item) != size for item in level):
            raise _not_rectangular(where)
        shape.append(size)
        level = [leaf for item in level for leaf in item]
        if not level:
            return tuple(shape), []
    if any(isinstance(item, list) for item in level):
        raise _not_rectangular(where)
    return tuple(shape), level


def _not_rectangular(where: str):
    return invalid_argument(f"{where}: Expecting tensors in list to be of same shape; "
                            "nested lists must be rectangular")


def to_array(value, dtype: int, where: str) -> np.ndarray:
    """A JSON value as an array of the signature's `dtype` (strings as object/bytes)."""
    shape, leaves = _flatten(value, where)
    converted = [_leaf(leaf, dtype, where) for leaf in leaves]
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(converted), dtype=object)
        array[:] = converted
    elif dtype in _INT_RANGES:
        array = np.asarray(converted, dtype=_INT_RANGES[dtype][0])
    elif dtype in _FLOATS:
        array = np.asarray(converted, dtype=_FLOATS[dtype])
    else:
        array = np.asarray(converted, dtype=np.bool_)
    return array.reshape(shape)


def inputs_from_request(document: Mapping[str, Any], signature
                        ) -> Tuple[Dict[str, np.ndarray], bool]:
    """({input name: array}, row format?) of a predict request for SignatureDef `signature`."""
    has_rows, has_columns = ROW_KEY in document, COLUMNAR_KEY in document
    if has_rows == has_columns:
        raise invalid_argument("Missing 'inputs' or 'instances' key" if not has_rows else
                               "Not both 'instances' and 'inputs' can be specified")
    names = sorted(signature.inputs)
    dtypes = {name: signature.inputs[name].dtype for name in names}
    if has_rows:
        return _rows(document[ROW_KEY], names, dtypes), True
    return _columns(document[COLUMNAR_KEY], names, dtypes), False


def _rows(instances, names: List[str], dtypes: Mapping[str, int]) -> Dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("'instances' must be a non-empty JSON array")
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named:
        if len(names) != 1:
            raise invalid_argument(
                f"'instances' rows must be objects keyed by input name: the signature has "
                f"{len(names)} inputs {{{','.join(names)}}}")
        return {names[0]: to_array(instances, dtypes[names[0]], "'instances'")}
    for index, row in enumerate(instances):
        if not isinstance(row, dict) or _is_b64(row):
            raise invalid_argument(f"Failed to process element: {index} of 'instances' list: "
                                   "every row must be an object when the first one is")
        if set(row) != set(names):
            missing, extra = sorted(set(names) - set(row)), sorted(set(row) - set(names))
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object keys "
                f"must be equal to the signature's inputs {{{','.join(names)}}}; missing: "
                f"{{{','.join(missing)}}}, unexpected: {{{','.join(extra)}}}")
    return {name: to_array([row[name] for row in instances], dtypes[name],
                           f"'instances' key: {name}") for name in names}


def _columns(inputs, names: List[str], dtypes: Mapping[str, int]) -> Dict[str, np.ndarray]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) != 1:
            raise invalid_argument(
                f"'inputs' must be an object keyed by input name: the signature has "
                f"{len(names)} inputs {{{','.join(names)}}}")
        return {names[0]: to_array(inputs, dtypes[names[0]], "'inputs'")}
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        raise invalid_argument(
            f"input size does not match signature: {len(inputs)}!={len(names)} "
            f"Sent extra: {{{','.join(unknown)}}}. Signature inputs: {{{','.join(names)}}}.")
    return {name: to_array(value, dtypes[name], f"'inputs' key: {name}")
            for name, value in inputs.items()}


def _json_values(name: str, value: np.ndarray):
    """Nested lists of JSON-ready values."""
    if value.dtype.kind in "OSU":
        flat = [json_string(name, item) for item in value.ravel()]
    elif value.dtype == np.float32:
        # float32 -> its shortest decimal (0.1, not 0.10000000149011612), as TF Serving prints.
        flat = [float(repr(item)) for item in value.ravel()]
    else:
        return value.tolist()
    holder = np.empty(len(flat), dtype=object)
    holder[:] = flat
    return holder.reshape(value.shape).tolist()


def json_string(name: str, item: Union[str, bytes]) -> Union[str, Dict[str, str]]:
    """A string tensor element as TF Serving's REST API writes it: text, or `{"b64": ...}`
    when the tensor's name ends in `_bytes` or the bytes are not UTF-8."""
    if isinstance(item, str):
        item = item.encode()
    if not name.endswith("_bytes"):
        try:
            return item.decode()
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(item).decode()}


def response_document(outputs: Mapping[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    """{"predictions": ...} (row format) or {"outputs": ...} (columnar)."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _json_values(names[0], outputs[names[0]])}
        return {"outputs": {name: _json_values(name, outputs[name]) for name in names}}
    sizes = {name: (outputs[name].shape[0] if outputs[name].ndim else None) for name in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise invalid_argument(
            f"Tensors in the row format must share their 0th dimension; output sizes "
            f"{sizes}: use the columnar ('inputs') format")
    columns = {name: _json_values(name, outputs[name]) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    rows = next(iter(sizes.values()))
    return {"predictions": [{name: columns[name][row] for name in names}
                            for row in range(rows)]}
