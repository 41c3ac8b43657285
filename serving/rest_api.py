"""TF Serving's REST API over the standard library's threading HTTP server.

    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]/metadata   signature metadata
    POST /v1/models/{name}[/versions/{v} | /labels/{l}]:predict    row or columnar predict
    POST ...:classify | ...:regress                                501 UNIMPLEMENTED

Paths, bodies, status codes and `{"error": message}` bodies follow TF Serving's
http_rest_api_handler. Request bodies above `max_body_bytes` get 413 without being parsed.
Connections are HTTP/1.1 keep-alive, one thread each.
"""
import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import model_pb2

from crossfade.serving import json_tensors
from crossfade.serving.errors import ServingError, invalid_argument
from crossfade.serving.signatures import SERVING_DEFAULT
from crossfade.serving.versions import ModelRegistry, status_response

LOG = logging.getLogger("crossfade.serving")

_PREDICTION = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)", re.IGNORECASE)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_API_PREFIX = re.compile(r"/v1/.*", re.IGNORECASE)
_DISCARD_LIMIT = 64 * 1024 * 1024  # refused bodies up to this size are read and dropped


class RestApi:
    """Request routing and the API's semantics, independent of the HTTP server."""

    def __init__(self, registry: ModelRegistry):
        self._registry = registry

    def handle(self, method: str, path: str, body: bytes) -> Tuple[int, Dict[str, Any]]:
        """(HTTP status, JSON document) for one request."""
        try:
            return 200, self._dispatch(method, path, body)
        except ServingError as error:
            return error.http_status, {"error": error.message}
        except Exception as error:  # a server bug answers 500, never crashes
            LOG.exception("REST %s %s failed", method, path)
            return 500, {"error": f"internal error: {error}"}

    def _dispatch(self, method: str, path: str, body: bytes) -> Dict[str, Any]:
        if method == "POST":
            match = _PREDICTION.fullmatch(path)
            if match:
                name, version, label, verb = _model_path(match)
                if verb.lower() != "predict":
                    raise ServingError(
                        grpc.StatusCode.UNIMPLEMENTED,
                        f"{verb} is not implemented by crossfade's local model server: "
                        "crossfade models have no classification or regression signatures; "
                        "use :predict")
                return self._predict(name, version, label, body)
        elif method == "GET":
            match = _STATUS.fullmatch(path)
            if match:
                name, version, label, metadata = _model_path(match)
                if not name:
                    raise invalid_argument("Missing model name in request.")
                if metadata:
                    return self._metadata(name, version, label)
                return json_format.MessageToDict(
                    status_response(self._registry.states(name, version, label)),
                    including_default_value_fields=True)
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict(self, name: str, version: Optional[int], label: Optional[str],
                 body: bytes) -> Dict[str, Any]:
        document = json_tensors.parse_body(body)
        signature_name = json_tensors.signature_name(document) or SERVING_DEFAULT
        servable = self._registry.servable(name, version, label)
        if signature_name not in servable.signature_defs:
            raise invalid_argument(
                f"Serving signature name: \"{signature_name}\" not found in signature def")
        inputs, row_format = json_tensors.inputs_from_request(
            document, servable.signature_defs[signature_name])
        outputs = servable.run(signature_name, inputs)
        return json_tensors.response_document(outputs, row_format)

    def _metadata(self, name: str, version: Optional[int],
                  label: Optional[str]) -> Dict[str, Any]:
        servable = self._registry.servable(name, version, label)
        spec = model_pb2.ModelSpec(name=servable.name)
        spec.version.value = servable.version
        options = dict(preserving_proto_field_name=True, including_default_value_fields=True)
        return {"model_spec": json_format.MessageToDict(spec, **options),
                "metadata": {"signature_def": json_format.MessageToDict(
                    servable.signature_def_map(), **options)}}


def _model_path(match) -> Tuple[str, Optional[int], Optional[str], Optional[str]]:
    name, version, label, last = match.groups()
    return (unquote(name) if name else "", int(version) if version else None,
            unquote(label) if label else None, last)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server_version = "crossfade-model-server"

    def do_GET(self):
        self._answer(b"")

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            self.close_connection = True
            return
        if int(length) > self.server.max_body_bytes:
            self._discard(int(length))
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                "error": f"request body of {length} bytes is larger than this server's "
                         f"limit of {self.server.max_body_bytes}"})
            self.close_connection = True
            return
        self._answer(self.rfile.read(int(length)))

    def _discard(self, length: int) -> None:
        """Reads and drops a refused body (up to a bound), so the client, still sending it,
        gets the 413 rather than a broken pipe."""
        remaining = min(length, _DISCARD_LIMIT)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)

    def _answer(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        if not _API_PREFIX.fullmatch(path):
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"Not found: {path}"})
            return
        status, document = self.server.api.handle(self.command, path, body)
        self._reply(status, document)

    def _reply(self, status: int, document: Dict[str, Any]) -> None:
        payload = json.dumps(document, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt, *args):
        LOG.debug("REST %s - %s", self.address_string(), fmt % args)


class RestServer(ThreadingHTTPServer):
    """The REST endpoint; `serve_in_background` starts it on a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, api: RestApi, max_body_bytes: int):
        super().__init__((host, port), _Handler)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def serve_in_background(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="rest-server",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
