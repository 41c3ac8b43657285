"""TF Serving's gRPC services, implemented with `tensorflow-serving-api`'s generated stubs.

* `tensorflow.serving.PredictionService`: `Predict` and `GetModelMetadata`; `Classify`,
  `Regress` and `MultiInference` answer UNIMPLEMENTED (crossfade models have no tf.Example
  classification or regression signatures).
* `tensorflow.serving.ModelService`: `GetModelStatus`; `HandleReloadConfigRequest` answers
  UNIMPLEMENTED (restart with another config).

Requests resolve `model_spec` (name; version number, label, or latest) through the
`ModelRegistry`; failures carry TF Serving's status codes and messages.
"""
import functools
import logging

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from crossfade.serving import tensor_proto
from crossfade.serving.errors import ServingError, invalid_argument
from crossfade.serving.signatures import SERVING_DEFAULT
from crossfade.serving.versions import ModelRegistry, status_response

LOG = logging.getLogger("crossfade.serving")
SIGNATURE_DEF_FIELD = "signature_def"


def _version_choice(spec):
    """(version or None, label or None) of a ModelSpec."""
    which = spec.WhichOneof("version_choice")
    if which == "version":
        return spec.version.value, None
    if which == "version_label":
        return None, spec.version_label
    return None, None


def _answering_errors(method):
    """Wraps a servicer method: a ServingError becomes its gRPC status; anything else is
    logged and answered INTERNAL, so no request can take the server down."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request)
        except ServingError as error:
            context.abort(error.code, error.message)
        except Exception as error:  # a server bug is INTERNAL, never a crash
            LOG.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {error}")

    return wrapper


def _unimplemented(method: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNIMPLEMENTED,
                        f"{method} is not implemented by crossfade's local model server: "
                        "crossfade models have no classification or regression signatures; "
                        "use Predict")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over the registry's servables."""

    def __init__(self, registry: ModelRegistry):
        self._registry = registry

    @_answering_errors
    def Predict(self, request) -> predict_pb2.PredictResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        version, label = _version_choice(spec)
        servable = self._registry.servable(spec.name, version, label)
        signature_name = spec.signature_name or SERVING_DEFAULT
        signature = servable.signature(signature_name)
        inputs = {name: tensor_proto.to_ndarray(value)
                  for name, value in request.inputs.items()}
        outputs = servable.run(signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(
                tensor_proto.from_ndarray(value, signature.outputs[name].dtype))
        return response

    @_answering_errors
    def GetModelMetadata(self, request):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        version, label = _version_choice(request.model_spec)
        servable = self._registry.servable(request.model_spec.name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
        return response

    @_answering_errors
    def Classify(self, request):
        raise _unimplemented("Classify")

    @_answering_errors
    def Regress(self, request):
        raise _unimplemented("Regress")

    @_answering_errors
    def MultiInference(self, request):
        raise _unimplemented("MultiInference")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: every known version's state (LOADING, AVAILABLE, END, ...)."""

    def __init__(self, registry: ModelRegistry):
        self._registry = registry

    @_answering_errors
    def GetModelStatus(self, request):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        version, label = _version_choice(request.model_spec)
        return status_response(self._registry.states(request.model_spec.name, version, label))

    @_answering_errors
    def HandleReloadConfigRequest(self, request):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           "HandleReloadConfigRequest is not implemented by crossfade's local "
                           "model server: restart it with the new --model-config-file")
