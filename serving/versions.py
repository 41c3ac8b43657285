"""Model versions on disk -> loaded servables, and which servable answers a request.

`VersionManager.poll` does what TF Serving's file-system source and availability-preserving
policy do for one model: it lists the all-digit folders under the base path (anything else,
such as the Pusher's `.staging-*` folders, is ignored), picks the versions its policy wants,
loads each new one completely — warmup requests included — and only then drops the versions
the policy no longer wants. Requests resolve against an immutable snapshot of the loaded
versions, so a request never sees a half-loaded version, and one already running on an old
version finishes on it (its reference keeps that version alive).

A version that fails to load is retried as TF Serving retries it: up to
`max_num_load_retries` more times (default 5), `load_retry_interval_micros` apart (default
60 s), so a copy that wrote saved_model.pb before variables/ loads once complete. Meanwhile it
shows as LOADING (TF Serving's state while it retries) and the policy chooses among the other
versions, so a broken newest version leaves the previous one serving, even at startup; a retry
is dropped if the policy no longer wants the version by then. Unlike TF Serving, which blocks
its load thread between attempts, retries happen on later polls, so other models and versions
keep loading. Once the retries are exhausted the version ends in END with the error and is not
tried again while its folder stays; if the folder goes away, the failure is forgotten, and a
version pushed again under the same number is loaded afresh. If the base path is missing or
holds no version, loaded versions stay loaded.
"""
import collections
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2

from crossfade.serving import model_base_path
from crossfade.serving.errors import ServingError, invalid_argument, not_found
from crossfade.serving.model_config import ModelConfig
from crossfade.serving.servable import Servable

LOG = logging.getLogger("crossfade.serving")

# ModelVersionStatus.State names (tensorflow_serving/apis/get_model_status.proto)
LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"

Loader = Callable[[ModelConfig, int, str], Servable]
DEFAULT_MAX_NUM_LOAD_RETRIES = 5  # tensorflow_model_server --max_num_load_retries
DEFAULT_LOAD_RETRY_INTERVAL_MICROS = 60_000_000  # --load_retry_interval_micros


@dataclasses.dataclass(frozen=True)
class VersionState:
    version: int
    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A version's failed load attempts: how many, when (clock time) it may try again, and
    the last error."""

    attempts: int
    retry_at: float
    code: grpc.StatusCode
    message: str


def versions_on_disk(base_path: str) -> Optional[Dict[int, str]]:
    """{version: folder name} of the all-digit subfolders of `base_path` ("00000123" is
    version 123); None if it cannot be listed."""
    try:
        return model_base_path.versions(base_path)
    except tf.errors.OpError:
        return None


def status_response(states: List[VersionState]) -> get_model_status_pb2.GetModelStatusResponse:
    """A GetModelStatusResponse of `VersionState`s (newest first)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in states:
        entry = response.model_version_status.add(
            version=state.version,
            state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state))
        entry.status.SetInParent()  # TF Serving always sends it, OK included
        entry.status.error_code = state.error_code.value[0]
        entry.status.error_message = state.error_message
    return response


class VersionManager:
    """Loaded versions of one model; see the module docstring."""

    def __init__(self, config: ModelConfig, loader: Loader, history: int = 32,
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval_micros: int = DEFAULT_LOAD_RETRY_INTERVAL_MICROS,
                 clock: Callable[[], float] = time.monotonic):
        if max_num_load_retries < 0 or load_retry_interval_micros < 0:
            raise ValueError("load retries and their interval must not be negative")
        self.config = config
        self._loader = loader
        self._loaded: Mapping[int, Servable] = {}  # replaced, never mutated: lock-free reads
        self._states: "collections.OrderedDict[int, VersionState]" = collections.OrderedDict()
        self._failed: Dict[int, _Failure] = {}
        self._max_retries = max_num_load_retries
        self._retry_interval_s = load_retry_interval_micros / 1e6
        self._clock = clock
        self._history = history
        self._poll_lock = threading.Lock()
        self._state_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    def poll(self) -> None:
        """One scan of the base path: load wanted versions, then unload unwanted ones."""
        with self._poll_lock:
            on_disk = versions_on_disk(self.config.base_path)
            if not on_disk:
                if not self._loaded:
                    LOG.warning("No versions of model %s found under base path %s",
                                self.config.name, self.config.base_path)
                return
            for version in set(self._failed) - set(on_disk):
                del self._failed[version]  # gone: a version pushed again starts afresh
            # Failed versions (until a retry is due) are out of the running, so `latest` falls
            # back to the newest loadable version rather than serving nothing.
            while True:
                wanted = self.config.policy.select(v for v in on_disk if self._may_load(v))
                missing = sorted(wanted - set(self._loaded), reverse=True)
                for version in missing:
                    self._load(version, os.path.join(self.config.base_path, on_disk[version]))
                if not set(missing) & set(self._failed):
                    break
            self._drop_unwanted_retries(on_disk)
            for version in sorted(set(self._loaded) - wanted):
                if len(self._loaded) > 1 or wanted & set(self._loaded):
                    self._unload(version)

    def _may_load(self, version: int) -> bool:
        """Not failed, or failed with a retry left and due."""
        failure = self._failed.get(version)
        return failure is None or (failure.attempts <= self._max_retries
                                   and self._clock() >= failure.retry_at)

    def _load(self, version: int, path: str) -> None:
        self._set_state(VersionState(version, LOADING))
        started = time.perf_counter()
        try:
            servable = self._loader(self.config, version, path)
        except Exception as error:  # noqa: BLE001 -- a bad version must not stop the server
            self._load_failed(version, error)
            return
        self._failed.pop(version, None)
        loaded = dict(self._loaded)
        loaded[version] = servable
        self._loaded = loaded
        self._set_state(VersionState(version, AVAILABLE))
        LOG.info("Successfully loaded servable version {name: %s version: %d} in %.1f s",
                 self.config.name, version, time.perf_counter() - started)

    def _load_failed(self, version: int, error: Exception) -> None:
        """Schedules a retry if one is left (the version stays LOADING), else ends it."""
        previous = self._failed.get(version)
        attempts = (previous.attempts if previous else 0) + 1
        code = error.code if isinstance(error, ServingError) else grpc.StatusCode.UNKNOWN
        message = f"Loading servable version {{name: {self.config.name} version: " \
                  f"{version}}} failed: {error}"
        self._failed[version] = _Failure(attempts, self._clock() + self._retry_interval_s,
                                         code, message)
        if attempts > self._max_retries:
            self._give_up(version)
            return
        LOG.error("%s; retrying in %g s (retry %d of %d)", message, self._retry_interval_s,
                  attempts, self._max_retries)

    def _give_up(self, version: int) -> None:
        """No more attempts: END with the last error, as TF Serving's GetModelStatus shows."""
        failure = dataclasses.replace(self._failed[version], attempts=self._max_retries + 1)
        self._failed[version] = failure
        LOG.error(failure.message)
        self._set_state(VersionState(version, END, failure.code, failure.message))

    def _drop_unwanted_retries(self, on_disk: Mapping[int, str]) -> None:
        """Gives up the retries of versions the policy no longer wants (a newer one loaded
        meanwhile), rather than leaving them LOADING for ever."""
        pending = {v for v, f in self._failed.items() if f.attempts <= self._max_retries}
        if pending:
            aspired = self.config.policy.select(
                v for v in on_disk if v not in self._failed or v in pending)
            for version in sorted(pending - aspired):
                self._give_up(version)

    def _unload(self, version: int) -> None:
        self._set_state(VersionState(version, UNLOADING))
        loaded = dict(self._loaded)
        del loaded[version]
        self._loaded = loaded  # in-flight requests keep their reference until they finish
        self._set_state(VersionState(version, END))
        LOG.info("Done unloading servable version {name: %s version: %d}",
                 self.config.name, version)

    def _set_state(self, state: VersionState) -> None:
        with self._state_lock:
            self._states.pop(state.version, None)
            self._states[state.version] = state
            while len(self._states) > self._history:
                self._states.popitem(last=False)

    # -- requests --------------------------------------------------------------------------

    @property
    def loaded_versions(self) -> List[int]:
        return sorted(self._loaded)

    def label_version(self, label: str) -> int:
        if label not in self.config.labels:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return self.config.labels[label]

    def servable(self, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        """The servable for a request: a version number, a label, or (neither) the latest."""
        loaded = self._loaded
        if label:
            version = self.label_version(label)
        if version is None:
            if not loaded:
                raise not_found(f"Servable not found for request: Latest({self.config.name})")
            return loaded[max(loaded)]
        if version not in loaded:
            raise not_found(f"Servable not found for request: Specific({self.config.name}, "
                            f"{version})")
        return loaded[version]

    def states(self, version: Optional[int] = None, label: Optional[str] = None
               ) -> List[VersionState]:
        """Every known version's state, newest first (or one version's)."""
        if label:
            version = self.label_version(label)
        with self._state_lock:
            states = dict(self._states)
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {self.config.name}")
            return [states[version]]
        if not states:
            raise not_found(f"Could not find any versions of model {self.config.name}")
        return [states[v] for v in sorted(states, reverse=True)]


class ModelRegistry:
    """Every served model's VersionManager, by name."""

    def __init__(self, managers: List[VersionManager]):
        self._managers = {manager.config.name: manager for manager in managers}

    @property
    def managers(self) -> List[VersionManager]:
        return list(self._managers.values())

    def manager(self, name: str, version: Optional[int] = None) -> VersionManager:
        if name not in self._managers:
            request = f"Specific({name}, {version})" if version is not None else \
                f"Latest({name})"
            raise not_found(f"Servable not found for request: {request}")
        return self._managers[name]

    def servable(self, name: str, version: Optional[int] = None,
                 label: Optional[str] = None) -> Servable:
        return self.manager(name, version).servable(version, label)

    def states(self, name: str, version: Optional[int] = None,
               label: Optional[str] = None) -> List[VersionState]:
        if name not in self._managers:
            raise not_found(f"Could not find any versions of model {name}")
        return self._managers[name].states(version, label)

    def poll(self) -> None:
        for manager in self._managers.values():
            manager.poll()

    def ready(self) -> Tuple[bool, List[str]]:
        """(every model has a loaded version, names of those that have none)."""
        waiting = [name for name, manager in self._managers.items()
                   if not manager.loaded_versions]
        return not waiting, waiting
