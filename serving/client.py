"""Clients for crossfade models served by TF Serving (or the local stand-in), gRPC and REST.

    with GrpcClient("127.0.0.1:8500") as client:        # or RestClient("127.0.0.1:8501")
        result = client.recommend("user-17", recent_tracks=["spotify:track:..."], k=10,
                                  diversity=0.3, exclude_listened=True)
        for track in result.tracks:
            print(track.track_id, track.title, track.artist, track.score)
        client.similar_tracks("spotify:track:...", k=10)
        blend = client.blend(["user-17", "user-42"], k=20)   # one list for a group
        for track in blend.tracks:
            print(track.track_id, track.title, "for", track.for_member)

Both clients take the model name, and a version number or a label (`stable`, `canary`) for
the client or per call; no choice means the latest loaded version. Every call has a deadline
(`timeout_s`, covering retries); calls are retried with exponential backoff only when the
server is UNAVAILABLE (not started, restarting, overloaded: nothing was computed), never
after other errors. Failures raise `ServingClientError` with the gRPC status code (over REST,
the code TF Serving's HTTP status stands for, from `crossfade.serving.errors`' table).

`recommend` calls the model's `recommend` signature (`crossfade.serving.signatures`), which
takes the controls (`exclude`, `diversity`, `explore`, `seed`) and answers titles, artists and
sampling propensities. A model that predates that signature (the server's error names it) is
asked through `serving_default` instead when every control is neutral — titles and artists
are then "" and propensities 1.0 — and the client skips the `recommend` attempt for that
model version choice for `SIGNATURE_RECHECK_S`; with a control set it fails with
FAILED_PRECONDITION saying the model predates `recommend`, rather than silently ignoring it.

gRPC uses the official `tensorflow-serving-api` stubs; REST sends TF Serving's row format
(`instances`), padding `recent_tracks` to a rectangle. Results are truncated to the `k`
asked for (under TF Serving's batching a response can carry the batch's largest K), and the ""
track ids that pad rows with fewer eligible tracks are dropped.
Clients are thread-safe.
"""
import dataclasses
import http.client
import json
import random
import socket
import threading
import time
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, TypeVar

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from crossfade.serving import json_tensors, signatures, tensor_proto
from crossfade.serving.errors import ServingError, code_from_number, http_status
from crossfade.serving.model_base_path import MODEL_NAME

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 3
SIGNATURE_RECHECK_S = 60.0  # how long a model found without `recommend` is asked without it
T = TypeVar("T")


def _codes_of_http() -> Dict[int, grpc.StatusCode]:
    """HTTP status -> the gRPC code it most likely stands for: the inverse of TF Serving's
    table (`errors.http_status`), the first code listed here winning where several share a
    status; 413 is the REST layer's own "body too large" (RESOURCE_EXHAUSTED over gRPC)."""
    preferred = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ABORTED,
                 grpc.StatusCode.INTERNAL)
    codes = {413: grpc.StatusCode.RESOURCE_EXHAUSTED}
    for code in preferred + tuple(grpc.StatusCode):
        if code != grpc.StatusCode.OK:
            codes.setdefault(http_status(code), code)
    return codes


_CODE_OF_HTTP = _codes_of_http()


class ScoredTrack(NamedTuple):  # a tuple: cheap to build by the hundred per response
    """One recommended track. `title` and `artist` are "" when the model's catalogue has none
    or the answer came from a signature without them (`serving_default`, `similar_tracks`);
    `propensity` is the probability the model's sampler chose this track in its slot given
    the earlier slots (1.0 when nothing was sampled)."""

    track_id: str
    score: float
    title: str = ""
    artist: str = ""
    propensity: float = 1.0


@dataclasses.dataclass(frozen=True)
class Recommendations:
    """Tracks best first. `model_version`: the version that answered (gRPC says; over REST
    only a requested version number is known). `found`: False when `similar_tracks`' seed
    track is not in the model's catalogue (then `tracks` is empty). `signature_name`: the
    signature that answered (`serving_default` when a model without `recommend` was asked)."""

    tracks: Tuple[ScoredTrack, ...]
    model_name: str
    model_version: Optional[int]
    found: bool = True
    signature_name: str = ""

    @property
    def track_ids(self) -> List[str]:
        return [track.track_id for track in self.tracks]


class BlendTrack(NamedTuple):
    """One track of a group list: `for_member` is the user id of the member it is chiefly for
    ("" for an anonymous member), `member_scores` each member's own score for it (cosine),
    in the order the members were given; `score` is the strategy's group score."""

    track_id: str
    score: float
    title: str
    artist: str
    for_member: str
    member_scores: Tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Blend:
    """A group list, best first, for `members` (as given) by `strategy`."""

    tracks: Tuple[BlendTrack, ...]
    members: Tuple[str, ...]
    strategy: str
    model_name: str
    model_version: Optional[int]

    @property
    def track_ids(self) -> List[str]:
        return [track.track_id for track in self.tracks]


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


class ServingClientError(Exception):
    """A failed call: `code` is a grpc.StatusCode; `http_status` is set over REST."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: Optional[int] = None):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


Outputs = Dict[str, np.ndarray]


class ServingClient:
    """What both clients offer: request building, retries and typed results here; the
    subclasses (GrpcClient, RestClient) move the tensors."""

    def __init__(self, model_name: str = MODEL_NAME, version: Optional[int] = None,
                 label: Optional[str] = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 retries: int = DEFAULT_RETRIES, backoff_s: float = 0.05):
        _check_choice(version, label)
        self.model_name = model_name
        self.version = version
        self.label = label
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        # (version, label) -> monotonic time until which `recommend` is not tried again.
        self._without_recommend: Dict[Tuple[Optional[int], Optional[str]], float] = {}
        self._lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------

    def recommend(self, user_id: str, recent_tracks: Optional[Sequence[str]] = None,
                  k: int = 10, *, platform: str = "", timestamp: Optional[int] = None,
                  exclude: Optional[Sequence[str]] = None, diversity: float = 0.0,
                  explore: float = 0.0, seed: int = 0, exclude_listened: bool = False,
                  released_within_days: int = 0, version: Optional[int] = None,
                  label: Optional[str] = None,
                  timeout_s: Optional[float] = None) -> Recommendations:
        """Top `k` tracks for `user_id`, given their `recent_tracks` (most recent first),
        `platform` and `timestamp` (Unix seconds; None: the server's clock).

        Controls (all neutral by default): `exclude` track ids are never returned, nor with
        `exclude_listened` the `recent_tracks` given (not the history a model may store for a
        user sent without any); `diversity` in [0, 1] re-ranks for variety
        (0: pure relevance); `explore` in [0, 1] is the chance each slot is sampled instead of
        taken best first; `seed` fixes the sampler (0: the server derives one);
        `released_within_days` = n > 0 keeps only tracks released in the last n days, the
        request's day included ("new for you"). See the module docstring for models without
        the `recommend` signature."""
        return self.recommend_many([user_id], [recent_tracks], k, platform=platform,
                                   timestamp=timestamp,
                                   exclude=None if exclude is None else [exclude],
                                   diversity=diversity, explore=explore, seed=seed,
                                   exclude_listened=exclude_listened,
                                   released_within_days=released_within_days,
                                   version=version, label=label, timeout_s=timeout_s)[0]

    def recommend_many(self, user_ids: Sequence[str],
                       recent_tracks: Optional[Sequence[Optional[Sequence[str]]]] = None,
                       k: int = 10, *, platform: str = "", timestamp: Optional[int] = None,
                       exclude: Optional[Sequence[Optional[Sequence[str]]]] = None,
                       diversity: float = 0.0, explore: float = 0.0, seed: int = 0,
                       exclude_listened: bool = False, released_within_days: int = 0,
                       version: Optional[int] = None,
                       label: Optional[str] = None,
                       timeout_s: Optional[float] = None) -> List[Recommendations]:
        """`recommend` for several users in one request (one result per user); `exclude`
        holds one list of track ids per user. ValueError for a control out of range."""
        inputs = signatures.recommend_controls_inputs(
            user_ids, recent_tracks, k, platform, timestamp, exclude, diversity, explore, seed,
            released_within_days)
        if exclude_listened and recent_tracks is not None:  # shapes checked just above
            inputs["exclude_track_ids"] = signatures.exclusions_matrix([
                _merged(listened, excluded) for listened, excluded in zip(
                    recent_tracks, exclude or [None] * len(user_ids), strict=True)])
        controls = signatures.non_neutral_controls(inputs)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        choice = self._choice(version, label)
        if controls or not self._known_without_recommend(choice):
            try:
                outputs, answered = self._call(signatures.RECOMMEND, inputs, *choice,
                                               deadline - time.monotonic())
                return [self._result(outputs, row, k, answered, signatures.RECOMMEND)
                        for row in range(len(user_ids))]
            except ServingClientError as error:
                if not _lacks_signature(error, signatures.RECOMMEND):
                    raise
                if controls:
                    raise ServingClientError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"model '{self.model_name}' predates the '{signatures.RECOMMEND}' "
                        f"signature, so it cannot apply {', '.join(controls)} (the server "
                        f"said: {error.message})", error.http_status) from None
                with self._lock:
                    self._without_recommend[choice] = time.monotonic() + SIGNATURE_RECHECK_S
        query = {name: value for name, value in inputs.items()
                 if name not in signatures.CONTROL_INPUTS}
        outputs, answered = self._call(signatures.SERVING_DEFAULT, query, *choice,
                                       deadline - time.monotonic())
        return [self._result(outputs, row, k, answered, signatures.SERVING_DEFAULT)
                for row in range(len(user_ids))]

    def similar_tracks(self, track_id: str, k: int = 10, *, version: Optional[int] = None,
                       label: Optional[str] = None,
                       timeout_s: Optional[float] = None) -> Recommendations:
        """The `k` catalogue tracks closest to `track_id` (itself excluded)."""
        inputs = signatures.similar_tracks_inputs([track_id], k)
        outputs, answered = self._call(signatures.SIMILAR_TRACKS, inputs, version, label,
                                       timeout_s)
        found = bool(np.asarray(outputs.get("found", [True]))[0])
        result = self._result(outputs, 0, k, answered, signatures.SIMILAR_TRACKS)
        return result if found else dataclasses.replace(result, tracks=(), found=False)

    def blend(self, user_ids: Sequence[str],
              recent_tracks: Optional[Sequence[Optional[Sequence[str]]]] = None,
              k: int = 20, *, strategy: str = signatures.DEFAULT_BLEND_STRATEGY,
              platform: str = "", timestamp: Optional[int] = None,
              exclude: Optional[Sequence[str]] = None, version: Optional[int] = None,
              label: Optional[str] = None, timeout_s: Optional[float] = None) -> Blend:
        """One list of `k` tracks for 1 to 5 listeners (`user_ids`, each with its
        `recent_tracks` or None: a known user without them is answered from their stored
        history) by `strategy` (`signatures.BLEND_STRATEGIES`: average, least-misery,
        fair-interleave), never any `exclude` track. ValueError for a bad group or strategy;
        a model without the `blend` signature fails with the server's error."""
        members = list(user_ids)
        inputs = signatures.blend_inputs(
            [members], None if recent_tracks is None else [list(recent_tracks)], k, strategy,
            platform, timestamp, None if exclude is None else [list(exclude)])
        outputs, answered = self._call(signatures.BLEND, inputs, version, label, timeout_s)
        ids = outputs["track_ids"][0]
        count = min(k, len(ids)) if k > 0 else len(ids)
        whose = np.asarray(outputs["for_member"][0][:count]).tolist()
        own = np.asarray(outputs["member_scores"][0][:count])[:, :len(members)].tolist()
        tracks = tuple(
            BlendTrack(_text(track), float(score), _text(title), _text(artist),
                       members[member] if 0 <= member < len(members) else "", tuple(scores))
            for track, score, title, artist, member, scores in zip(
                ids[:count], outputs["scores"][0][:count], outputs["titles"][0][:count],
                outputs["artists"][0][:count], whose, own, strict=True)
            if _text(track) != signatures.PAD)
        return Blend(tracks, tuple(members), str(strategy), self.model_name, answered)

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray],
                version: Optional[int] = None, label: Optional[str] = None,
                timeout_s: Optional[float] = None) -> Tuple[Outputs, Optional[int]]:
        """Any signature: (outputs, the version that answered if known)."""
        return self._call(signature_name, dict(inputs), version, label, timeout_s)

    def model_status(self, version: Optional[int] = None, label: Optional[str] = None,
                     timeout_s: Optional[float] = None) -> List[VersionStatus]:
        version, label = self._choice(version, label)
        return self._with_retries(lambda remaining: self._status(version, label, remaining),
                                  timeout_s)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _choice(self, version, label) -> Tuple[Optional[int], Optional[str]]:
        _check_choice(version, label)
        if version is None and label is None:
            return self.version, self.label
        return version, label

    def _known_without_recommend(self, choice: Tuple[Optional[int], Optional[str]]) -> bool:
        with self._lock:
            until = self._without_recommend.get(choice)
            if until is not None and time.monotonic() >= until:
                del self._without_recommend[choice]
                until = None
        return until is not None

    def _call(self, signature_name: str, inputs: Dict[str, np.ndarray], version, label,
              timeout_s) -> Tuple[Outputs, Optional[int]]:
        version, label = self._choice(version, label)
        return self._with_retries(
            lambda remaining: self._predict(signature_name, inputs, version, label, remaining),
            timeout_s)

    def _with_retries(self, attempt: Callable[[float], T], timeout_s: Optional[float]) -> T:
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        for tries in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServingClientError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                         "deadline exceeded before the call could be made")
            try:
                return attempt(remaining)
            except ServingClientError as error:
                if error.code != grpc.StatusCode.UNAVAILABLE or tries == self.retries:
                    raise
                pause = self.backoff_s * (2 ** tries) * (0.5 + random.random())
                if time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _result(self, outputs: Outputs, row: int, k: int, answered: Optional[int],
                signature_name: str) -> Recommendations:
        ids = outputs["track_ids"][row]
        count = len(ids) if k <= 0 else min(k, len(ids))

        def column(name: str, default) -> list:
            if name not in outputs:
                return [default] * count
            return np.asarray(outputs[name][row][:count]).tolist()

        tracks = tuple(
            ScoredTrack(_text(track), score, _text(title), _text(artist), propensity)
            for track, score, title, artist, propensity in zip(
                ids[:count], column("scores", 0.0), column("titles", ""),
                column("artists", ""), column("propensities", 1.0), strict=True)
            if _text(track) != signatures.PAD)
        return Recommendations(tracks, self.model_name, answered,
                               signature_name=signature_name)

    def _predict(self, signature_name, inputs, version, label, timeout_s):
        raise NotImplementedError

    def _status(self, version, label, timeout_s):
        raise NotImplementedError


def _check_choice(version: Optional[int], label: Optional[str]) -> None:
    if version is not None and label is not None:
        raise ValueError("give a model version or a version label, not both")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _merged(first: Optional[Sequence[str]], second: Optional[Sequence[str]]) -> List[str]:
    """`first` then `second`, without repeats or padding."""
    return list(dict.fromkeys(track for track in [*(first or ()), *(second or ())]
                              if track != signatures.PAD))


def _lacks_signature(error: ServingClientError, signature_name: str) -> bool:
    """Whether `error` is the server saying the model has no signature `signature_name`:
    TF Serving (and the local server) answer `Serving signature key "NAME" not found.` over
    gRPC (FAILED_PRECONDITION) and `Serving signature name: "NAME" not found in signature
    def` over REST (INVALID_ARGUMENT)."""
    message = error.message.lower()
    return (error.code in (grpc.StatusCode.FAILED_PRECONDITION,
                           grpc.StatusCode.INVALID_ARGUMENT)
            and f'"{signature_name.lower()}" not found' in message and "signature" in message)


class GrpcClient(ServingClient):
    """TF Serving's gRPC API at `target` ("host:port", default port 8500)."""

    def __init__(self, target: str, model_name: str = MODEL_NAME, **options):
        super().__init__(model_name, **options)
        self.target = target
        self._channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                             ("grpc.enable_retries", 0)])  # ours: UNAVAILABLE only
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, spec, version, label) -> None:
        spec.name = self.model_name
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label

    def _predict(self, signature_name, inputs, version, label, timeout_s):
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version, label)
        request.model_spec.signature_name = signature_name
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tensor_proto.from_ndarray(value))
        try:
            response = self._predictions.Predict(request, timeout=timeout_s)
        except grpc.RpcError as error:
            raise ServingClientError(error.code(), error.details() or "") from None
        outputs = {name: tensor_proto.to_ndarray(value)
                   for name, value in response.outputs.items()}
        answered = response.model_spec.version.value \
            if response.model_spec.HasField("version") else None
        return outputs, answered

    def _status(self, version, label, timeout_s):
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version, label)
        try:
            response = self._models.GetModelStatus(request, timeout=timeout_s)
        except grpc.RpcError as error:
            raise ServingClientError(error.code(), error.details() or "") from None
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [VersionStatus(entry.version, state_name(entry.state),
                              code_from_number(entry.status.error_code).name,
                              entry.status.error_message)
                for entry in response.model_version_status]

    def close(self) -> None:
        self._channel.close()


class RestClient(ServingClient):
    """TF Serving's REST API at `server` ("host:port" or "http://host:port", default port
    8501). Keeps one keep-alive connection per calling thread."""

    def __init__(self, server: str, model_name: str = MODEL_NAME, **options):
        super().__init__(model_name, **options)
        address = server.split("://", 1)[-1].rstrip("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {server!r}")
        self.host, self.port = host.strip("[]"), int(port)
        self._local = threading.local()

    def _path(self, version, label, suffix: str) -> str:
        path = f"/v1/models/{self.model_name}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label:
            path += f"/labels/{label}"
        return path + suffix

    def _request(self, method: str, path: str, body: Optional[bytes], timeout_s: float):
        """(status, JSON document); connection failures are UNAVAILABLE, timeouts
        DEADLINE_EXCEEDED."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
            self._local.connection = connection
        connection.timeout = timeout_s
        if connection.sock is not None:
            connection.sock.settimeout(timeout_s)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except socket.timeout:
            self._drop_connection()
            raise ServingClientError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                     f"no answer from {self.host}:{self.port} within "
                                     f"{timeout_s:.3f} s") from None
        except (OSError, http.client.HTTPException) as error:
            # Refused, reset, or a kept-alive connection the server closed: nothing ran.
            self._drop_connection()
            raise ServingClientError(grpc.StatusCode.UNAVAILABLE,
                                     f"{self.host}:{self.port}: {error!r}") from None
        try:
            document = json.loads(payload) if payload else {}
        except ValueError:
            document = {"error": payload.decode(errors="replace")}
        if response.status != 200:
            code = _CODE_OF_HTTP.get(response.status, grpc.StatusCode.UNKNOWN)
            message = document.get("error", "") if isinstance(document, dict) else ""
            raise ServingClientError(code, message, response.status)
        return document

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def _predict(self, signature_name, inputs, version, label, timeout_s):
        rows = len(next(iter(inputs.values())))
        instances = [{name: _json_value(name, value[row]) for name, value in inputs.items()}
                     for row in range(rows)]
        body = json.dumps({"signature_name": signature_name, "instances": instances}).encode()
        document = self._request("POST", self._path(version, label, ":predict"), body,
                                 timeout_s)
        predictions = document["predictions"]
        if predictions and not isinstance(predictions[0], dict):
            raise ServingClientError(grpc.StatusCode.INTERNAL,
                                     f"signature {signature_name} has a single output; "
                                     "expected named outputs")
        outputs = {name: np.array([_from_json(row[name]) for row in predictions],
                                  dtype=object if _is_text(predictions[0][name]) else None)
                   for name in (predictions[0] if predictions else {})}
        return outputs, version

    def _status(self, version, label, timeout_s):
        document = self._request("GET", self._path(version, label, ""), None, timeout_s)
        return [VersionStatus(int(entry["version"]), entry["state"],
                              entry.get("status", {}).get("error_code", "OK"),
                              entry.get("status", {}).get("error_message", ""))
                for entry in document.get("model_version_status", [])]

    def close(self) -> None:
        self._drop_connection()


def _json_value(name: str, value):
    """A numpy row of input `name` as JSON, strings as the REST API encodes them."""
    if isinstance(value, np.ndarray):
        return [_json_value(name, item) for item in value]
    if isinstance(value, bytes):
        return json_tensors.json_string(name, value)
    return value.item() if isinstance(value, np.generic) else value


def _is_text(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, (str, dict))


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict):
        try:
            return json_tensors.decode_b64(value, "response")
        except ServingError as error:  # the server's answer is malformed, not the request
            raise ServingClientError(grpc.StatusCode.INTERNAL, str(error)) from None
    return value


def connect(server: str, protocol: str = "grpc", **options) -> ServingClient:
    """A GrpcClient or RestClient for `server` ("host:port")."""
    if protocol == "grpc":
        return GrpcClient(server, **options)
    if protocol == "rest":
        return RestClient(server, **options)
    raise ValueError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
