"""A local stand-in for `tensorflow_model_server`: the same APIs over the same base path.

`ModelServer` loads each model's versions (`crossfade.serving.versions`), replays their
warmup requests, and serves TF Serving's gRPC API (`crossfade.serving.grpc_api`, default port
8500) and REST API (`crossfade.serving.rest_api`, default 8501). Like TF Serving it binds its
ports only once every model has a version loaded, then polls the base paths every
`poll_seconds` and rolls new versions in without failing a request.

Differences from TF Serving, on purpose: it binds 127.0.0.1 by default (it is a development
and CI server, not an exposed service); request size and `k` are capped (`RequestLimits`,
`max_request_bytes`); batching groups requests by `k` so every response has its own K
columns; failed loads are retried on later polls rather than in a blocked load thread
(`crossfade.serving.versions`); Classify/Regress/MultiInference and config reloads are
UNIMPLEMENTED.
"""
import dataclasses
import logging
import threading
import time
from concurrent import futures
from typing import List, Optional

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from crossfade.serving import grpc_api, rest_api, warmup
from crossfade.serving.batching import BatchingOptions
from crossfade.serving.model_config import ModelConfig
from crossfade.serving.servable import RequestLimits, Servable
from crossfade.serving.versions import (
    DEFAULT_LOAD_RETRY_INTERVAL_MICROS,
    DEFAULT_MAX_NUM_LOAD_RETRIES,
    ModelRegistry,
    VersionManager,
)

LOG = logging.getLogger("crossfade.serving")
DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """`grpc_port`/`rest_port` 0 pick a free port; `rest_port` None turns REST off."""

    host: str = "127.0.0.1"
    grpc_port: int = DEFAULT_GRPC_PORT
    rest_port: Optional[int] = DEFAULT_REST_PORT
    poll_seconds: float = 1.0
    limits: RequestLimits = RequestLimits()
    max_request_bytes: int = 4 * 1024 * 1024  # gRPC message and REST body
    batching: Optional[BatchingOptions] = dataclasses.field(default_factory=BatchingOptions)
    grpc_threads: int = 32
    enable_warmup: bool = True
    # A failed load is retried this many more times, this far apart (TF Serving's flags).
    max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = DEFAULT_LOAD_RETRY_INTERVAL_MICROS


class ModelServer:
    """Serves `models` over gRPC and REST; `start()`, then `stop()` (or use `with`)."""

    def __init__(self, models: List[ModelConfig], options: ServerOptions = ServerOptions()):
        if not models:
            raise ValueError("no models to serve")
        self.options = options
        self.registry = ModelRegistry([
            VersionManager(model, self._load,
                           max_num_load_retries=options.max_num_load_retries,
                           load_retry_interval_micros=options.load_retry_interval_micros)
            for model in models])
        self._grpc_server: Optional[grpc.Server] = None
        self._rest_server: Optional[rest_api.RestServer] = None
        self._stop = threading.Event()
        self._poller: Optional[threading.Thread] = None
        self.grpc_port: Optional[int] = None
        self.rest_port: Optional[int] = None

    def _load(self, config: ModelConfig, version: int, path: str) -> Servable:
        servable = Servable.load(config.name, version, path, self.options.limits,
                                 self.options.batching)
        if self.options.enable_warmup:
            started = time.perf_counter()
            count = warmup.replay(servable)
            if count:
                LOG.info("Finished warming up model %s version %d with %d requests in %.2f s",
                         config.name, version, count, time.perf_counter() - started)
        return servable

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait_seconds: Optional[float] = None) -> "ModelServer":
        """Loads every model's initial versions (waiting up to `wait_seconds`, None = as long
        as it takes, as TF Serving does), then opens the ports and starts polling."""
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        while True:
            self.registry.poll()
            ready, waiting = self.registry.ready()
            if ready:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no loadable version of model(s) {waiting} after "
                                   f"{wait_seconds} s")
            if self._stop.wait(self.options.poll_seconds):
                raise RuntimeError("stopped before the models were loaded")
        self._start_grpc()
        if self.options.rest_port is not None:
            self._rest_server = rest_api.RestServer(
                self.options.host, self.options.rest_port, rest_api.RestApi(self.registry),
                self.options.max_request_bytes)
            self._rest_server.serve_in_background()
            self.rest_port = self._rest_server.port
        self._poller = threading.Thread(target=self._poll_forever, name="version-poller",
                                        daemon=True)
        self._poller.start()
        return self

    def _start_grpc(self) -> None:
        limit = self.options.max_request_bytes
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.options.grpc_threads,
                                       thread_name_prefix="grpc"),
            options=[("grpc.max_receive_message_length", limit),
                     ("grpc.max_send_message_length", 64 * 1024 * 1024),
                     ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            grpc_api.PredictionService(self.registry), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            grpc_api.ModelService(self.registry), server)
        port = server.add_insecure_port(f"{self.options.host}:{self.options.grpc_port}")
        if port == 0:
            raise OSError(f"cannot bind gRPC to {self.options.host}:{self.options.grpc_port}")
        server.start()
        self._grpc_server, self.grpc_port = server, port

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.options.poll_seconds):
            try:
                self.registry.poll()
            except Exception:  # keep serving what is loaded
                LOG.exception("Polling the model base paths failed")

    def stop(self, grace_seconds: float = 1.0) -> None:
        """Closes the ports (in-flight requests get `grace_seconds`); safe to call twice."""
        self._stop.set()
        grpc_server, self._grpc_server = self._grpc_server, None
        rest_server, self._rest_server = self._rest_server, None
        if grpc_server is not None:
            grpc_server.stop(grace_seconds).wait()
        if rest_server is not None:
            rest_server.stop()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(timeout=30)

    def wait(self) -> None:
        """Blocks until `stop()` is called (from another thread or a signal handler)."""
        while not self._stop.wait(0.5):
            pass

    def __enter__(self) -> "ModelServer":
        return self.start() if self.grpc_port is None else self

    def __exit__(self, *exc_info) -> None:
        self.stop()
