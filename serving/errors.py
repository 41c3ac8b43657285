"""Status codes of the serving APIs: one error type, and how it reads over gRPC and HTTP.

Every failure the local model server reports is a `ServingError` carrying a gRPC status code,
the same code TF Serving returns for the same mistake. The REST API turns the code into an
HTTP status with TF Serving's own table (`http_status`), so a client sees the same answer from
the local server and from `tensorflow_model_server`.
"""
from typing import Optional

import grpc

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc).
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# TensorFlow's error codes are gRPC's codes by number.
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request the server answers with an error status instead of a result."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 http_status: Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        # Only for HTTP-level failures without a gRPC twin (e.g. 413 body too large).
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or http_status(self.code)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status TF Serving's REST API answers for gRPC status `code`."""
    return _HTTP_STATUS.get(code, 500)


def code_from_number(number: int) -> grpc.StatusCode:
    """The gRPC status code with canonical number `number` (UNKNOWN if none)."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)
