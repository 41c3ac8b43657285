"""One loaded model version: its signatures, request validation, and calls into the model.

A `Servable` wraps one `tf.saved_model.load` of `<base>/<version>/` and answers named-signature
calls with numpy inputs and outputs, from any number of threads at once. Requests are checked
in TF Serving's order and with its status codes before they reach the model:

* unknown signature -> FAILED_PRECONDITION (gRPC Predict; REST checks earlier and says
  INVALID_ARGUMENT), missing or extra input, wrong dtype or rank -> INVALID_ARGUMENT;
* the server's own limits: more than `max_rows` rows, or an int input named `k` above
  `max_k` -> INVALID_ARGUMENT;
* errors raised inside the graph (e.g. the model's own `k` check) keep TensorFlow's code.

Signature metadata is read from `saved_model.pb`, exactly what TF Serving returns from
GetModelMetadata. With `BatchingOptions`, concurrent calls to one signature share model calls
(`crossfade.serving.batching`); validation happens per request first, so a bad request never joins a
batch.

A `Servable.load`ed version owns its model: when the Servable is freed (its version unloaded and
its last in-flight request done) it destroys the model's restored resources, such as lookup
tables. TensorFlow never frees a restored table by itself (its resource manager keeps it), which
leaked every unloaded version's tables (about 50 MB a version of the real model). Nothing refers
back to the Servable from the objects it owns (batcher included), so reference counting alone
frees it, without waiting for a garbage collection.
"""
import dataclasses
import functools
import logging
import os
import weakref
from typing import Dict, Hashable, Iterable, List, Mapping, Optional, Sequence

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from crossfade.serving import tensor_proto
from crossfade.serving.batching import Batcher, BatchingOptions
from crossfade.serving.errors import ServingError, code_from_number, invalid_argument
from crossfade.serving.signatures import SERVING_DEFAULT

LOG = logging.getLogger("crossfade.serving")
SERVE_TAG = "serve"
K_INPUT = "k"  # crossfade's result count: capped by RequestLimits.max_k


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """Per-request caps; `max_k` applies to int inputs named `k`."""

    max_rows: int = 1024
    max_k: int = 100


def read_signature_defs(export_dir: str) -> Dict[str, meta_graph_pb2.SignatureDef]:
    """The `serve` MetaGraph's SignatureDefs of the SavedModel in `export_dir`."""
    import tensorflow as tf  # gfile: the export may be on a remote filesystem
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{export_dir} has no MetaGraph tagged '{SERVE_TAG}'")


def _expected_shape(info) -> Optional[tuple]:
    """(-1 for unknown dims) or None for unknown rank."""
    if info.tensor_shape.unknown_rank:
        return None
    return tuple(dim.size for dim in info.tensor_shape.dim)


class Servable:
    """A loaded SavedModel version; thread-safe. See the module docstring."""

    def __init__(self, name: str, version: int, path: str, model,
                 signature_defs: Mapping[str, meta_graph_pb2.SignatureDef],
                 limits: RequestLimits = RequestLimits(),
                 batching: Optional[BatchingOptions] = None):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = dict(signature_defs)
        self.limits = limits
        self._model = model  # keeps the variables alive as long as the functions
        self._functions = {key: model.signatures[key] for key in self.signature_defs
                           if key in model.signatures}
        # Not the bound method self._call: the batcher would then keep this Servable alive
        # in a reference cycle, until a full garbage collection.
        self._batcher = Batcher(functools.partial(_call_signature, self._functions),
                                batching) if batching else None

    @classmethod
    def load(cls, name: str, version: int, path: str, limits: RequestLimits = RequestLimits(),
             batching: Optional[BatchingOptions] = None) -> "Servable":
        """Loads the SavedModel at `path`; the Servable owns the model (see the module
        docstring): its resources are destroyed when the Servable is freed."""
        import tensorflow as tf
        model = tf.saved_model.load(path, tags=[SERVE_TAG])
        servable = cls(name, version, path, model, read_signature_defs(path), limits, batching)
        release = weakref.finalize(servable, destroy_resources, restored_resources(model),
                                   f"{name} version {version}")
        release.atexit = False  # at exit TensorFlow may already be gone; the process ends
        return servable

    # -- metadata --------------------------------------------------------------------------

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        return signature_map

    def signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef called `signature_name` ("" = serving_default)."""
        key = signature_name or SERVING_DEFAULT
        if key not in self._functions:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Serving signature key \"{key}\" not found.")
        return self.signature_defs[key]

    # -- calls -----------------------------------------------------------------------------

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_filter: Sequence[str] = ()) -> Dict[str, np.ndarray]:
        """Outputs (all, or `output_filter`'s) of signature `signature_name` on `inputs`."""
        key = signature_name or SERVING_DEFAULT
        signature = self.signature(key)
        inputs = dict(inputs)
        self._validate(key, signature, inputs)
        wanted = self._output_names(signature, output_filter)
        rows = _common_rows(inputs.values())
        if self._batcher is not None and rows is not None:
            outputs = self._batcher.submit(self._batch_key(key, inputs), inputs, rows)
        else:
            outputs = self._call((key,), inputs)
        return {name: outputs[name] for name in wanted}

    def _validate(self, key: str, signature, inputs: Dict[str, np.ndarray]) -> None:
        expected = set(signature.inputs)
        if set(inputs) != expected:
            sent, extra, missing = sorted(inputs), sorted(set(inputs) - expected), \
                sorted(expected - set(inputs))
            raise invalid_argument(
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: "
                f"{{{','.join(missing)}}}.")
        for name, value in inputs.items():
            info = signature.inputs[name]
            got = tensor_proto.dtype_of(value)
            if got != info.dtype:
                raise invalid_argument(
                    f"input '{name}' of signature '{key}' must be "
                    f"{tensor_proto.dtype_name(info.dtype)}, got {tensor_proto.dtype_name(got)}")
            shape = _expected_shape(info)
            if shape is not None and (len(shape) != value.ndim or any(
                    want >= 0 and want != have
                    for want, have in zip(shape, value.shape, strict=True))):
                raise invalid_argument(
                    f"input '{name}' of signature '{key}' has shape {list(value.shape)}, "
                    f"the signature expects {[d if d >= 0 else None for d in shape]}")
            if value.ndim and len(value) > self.limits.max_rows:
                raise invalid_argument(
                    f"input '{name}' has {len(value)} rows; this server accepts at most "
                    f"{self.limits.max_rows} per request")
            if name == K_INPUT and value.dtype.kind == "i" and value.size \
                    and int(value.max()) > self.limits.max_k:
                raise invalid_argument(
                    f"k must be at most {self.limits.max_k}, got {int(value.max())}")

    @staticmethod
    def _output_names(signature, output_filter: Sequence[str]) -> Iterable[str]:
        if not output_filter:
            return list(signature.outputs)
        seen = set()
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}.")
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return list(output_filter)

    @staticmethod
    def _batch_key(key: str, inputs: Mapping[str, np.ndarray]) -> Hashable:
        # Requests batch only when concatenation is valid and the outputs keep their shape.
        parts = tuple(sorted((name, value.dtype.str, value.shape[1:])
                             for name, value in inputs.items()))
        k = inputs.get(K_INPUT)
        k_values = tuple(np.unique(k).tolist()) if k is not None else ()
        return (key, parts, k_values)

    def _call(self, key: Hashable, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return _call_signature(self._functions, key, inputs)


def _call_signature(functions: Mapping[str, object], key: Hashable,
                    inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Outputs of signature function `functions[key[0]]` on `inputs`, errors as
    ServingErrors."""
    import tensorflow as tf
    function = functions[key[0]]
    try:
        outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
    except tf.errors.OpError as error:
        raise ServingError(code_from_number(error.error_code), error.message) from None
    except (TypeError, ValueError) as error:  # argument binding, before the graph runs
        raise invalid_argument(str(error)) from None
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def restored_resources(model) -> List:
    """Resource handles of every resource (lookup tables, ...) in a loaded SavedModel's object
    graph; variables are not among them (they free themselves with their handles)."""
    import tensorflow as tf
    from tensorflow.python.trackable.resource import CapturableResource
    return [node.resource_handle for node in tf.train.TrackableView(model).descendants()
            if isinstance(node, CapturableResource)]


def destroy_resources(handles: Sequence, what: str = "") -> None:
    """Deletes `handles`' resources from TensorFlow's resource manager (which frees them once
    no kernel holds them); a resource already gone is fine. Never raises: it runs from a
    finalizer."""
    from tensorflow.python.eager import context
    from tensorflow.python.ops import gen_resource_variable_ops

    # A finalizer runs wherever the garbage collector happens to be: inside the tracing of a
    # tf.function, or while a library (TFMA, TFT) builds a TF1 graph. Eager mode runs the ops
    # now, on the handles, whatever graph is the default there.
    with context.eager_mode():
        for handle in handles:
            try:
                gen_resource_variable_ops.destroy_resource_op(handle, ignore_lookup_error=True)
            except Exception:  # a leak is better than a crash while unloading
                LOG.warning("Could not free a resource of %s", what, exc_info=True)


def _common_rows(values: Iterable[np.ndarray]) -> Optional[int]:
    """The shared axis-0 size of every input, or None if they differ or one is a scalar."""
    sizes = {value.shape[0] if value.ndim else None for value in values}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None
