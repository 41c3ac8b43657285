"""The policies `crossfade simulate` compares: exported models, a top chart, random lists.

A policy answers a day's `Requests` (one row per listener: its id, recent streams, the time
and platform of its session) with `Lists` of track indices and the probability with which each
slot was chosen given the earlier ones (1.0 for a deterministic choice).

* `ModelPolicy` calls an exported model through its SavedModel signatures, exactly the
  requests TF Serving would get: ``recommend`` with the policy's controls (``diversity``,
  ``explore``, a per-day ``seed``), or ``serving_default`` when every control is neutral and
  the model predates ``recommend``. Its backend is either the SavedModel loaded in process
  (`SavedModelBackend`, the local server's own `Servable`, so inputs are validated as the
  server would) or a running server over gRPC (`ServerBackend`).
* `ChartPolicy`: the same most-streamed tracks for everyone.
* `RandomPolicy`: ``k`` distinct released tracks uniformly at random; slot ``j`` (0-based) of
  a catalogue of ``C`` has propensity ``1 / (C - j)``.

Specs (`parse_spec`): ``SOURCE[:NAME=VALUE,...]`` with SOURCE ``model`` (the latest pushed
version), ``chart``, ``random`` or the path of an export (a folder with ``saved_model.pb``, or
a model base path whose latest version is used); NAME is ``diversity`` or ``explore``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np
import pandas as pd

from crossfade.serving import signatures

#: Rows per model call: the local server's request cap (`servable.RequestLimits.max_rows`).
MAX_ROWS = 1024
CONTROLS = ("diversity", "explore")
MODEL, CHART, RANDOM = "model", "chart", "random"


class PolicyError(ValueError):
    """A policy spec or export that cannot be used (named in the message)."""


@dataclass
class Requests:
    """One simulated day's requests: [n] listeners and their context."""

    day: int
    users: np.ndarray             # listener indices
    user_ids: np.ndarray          # their ids (object)
    recent: np.ndarray            # [n, R] track indices, most recent first, -1 padding
    timestamps: np.ndarray        # int64 Unix seconds
    platforms: np.ndarray         # object
    k: int


@dataclass
class Lists:
    tracks: np.ndarray            # [n, k] track indices, -1 for an empty slot
    propensities: np.ndarray      # [n, k] float, P(slot's track | earlier slots)


class Policy(Protocol):
    name: str
    source: str

    def recommend(self, requests: Requests) -> Lists: ...


@dataclass(frozen=True)
class PolicySpec:
    source: str
    controls: Mapping[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        # An export is named by its whole path: base paths all end in the model's name.
        base = self.source if self.source in (MODEL, CHART, RANDOM) else os.path.normpath(
            self.source)
        tail = ",".join(f"{k}={v:g}" for k, v in sorted(self.controls.items()))
        return f"{base}:{tail}" if tail else base


def parse_spec(text: str) -> PolicySpec:
    """``SOURCE[:diversity=D,explore=E]`` -> PolicySpec (PolicyError for a bad control)."""
    match = re.fullmatch(r"(.+?):((?:[a-z_]+=[^,=:]+,?)+)", text)
    source, tail = (match.group(1), match.group(2)) if match else (text, "")
    controls = {}
    for item in filter(None, tail.split(",")):
        name, _, value = item.partition("=")
        if name not in CONTROLS:
            raise PolicyError(f"policy {text!r}: unknown control {name!r} (known: {CONTROLS})")
        try:
            controls[name] = float(value)
        except ValueError:
            raise PolicyError(f"policy {text!r}: {name}={value!r} is not a number") from None
        if not 0.0 <= controls[name] <= 1.0:
            raise PolicyError(f"policy {text!r}: {name} must be in [0, 1]")
    if not source:
        raise PolicyError(f"policy {text!r}: no source")
    if controls and source in (CHART, RANDOM):
        raise PolicyError(f"policy {text!r}: {source} takes no controls")
    return PolicySpec(source, controls)


# -- model policies ------------------------------------------------------------------------


class SavedModelBackend:
    """An export loaded in this process as the local server loads it (`servable.Servable`)."""

    def __init__(self, export_dir: str) -> None:
        from crossfade.serving.servable import RequestLimits, Servable
        self.export_dir = export_dir
        self._servable = Servable.load("simulate", 0, export_dir, RequestLimits(MAX_ROWS))
        self.signature_names = set(self._servable.signature_defs)
        self.signature_defs = self._servable.signature_defs

    def predict(self, signature_name: str, inputs: dict) -> dict:
        return self._servable.run(signature_name, inputs)


class ServerBackend:
    """A running TF Serving (or `crossfade serve`) at ``target`` over gRPC."""

    def __init__(self, target: str) -> None:
        from crossfade.serving.client import GrpcClient
        self.export_dir = f"grpc://{target}"
        self._client = GrpcClient(target)
        # The server's own metadata says which signatures exist.
        self.signature_names = None
        self.signature_defs = None

    def predict(self, signature_name: str, inputs: dict) -> dict:
        outputs, _ = self._client.predict(signature_name, inputs)
        return outputs


def _check_signatures(backend, needs_controls: bool) -> str:
    """The signature to call; PolicyError when the export lacks what the policy needs."""
    names = backend.signature_names
    if names is None:  # a server: its answers tell
        return signatures.RECOMMEND
    if signatures.RECOMMEND in names:
        wanted = {"track_ids", "propensities"}
        outputs = set(backend.signature_defs[signatures.RECOMMEND].outputs)
        inputs = set(backend.signature_defs[signatures.RECOMMEND].inputs)
        missing = (wanted - outputs) | (set(signatures.CONTROL_INPUTS) - inputs)
        if missing:
            raise PolicyError(f"{backend.export_dir}: signature '{signatures.RECOMMEND}' lacks "
                              f"{sorted(missing)}; not a crossfade export")
        return signatures.RECOMMEND
    if needs_controls:
        raise PolicyError(f"{backend.export_dir}: no '{signatures.RECOMMEND}' signature, so it "
                          "cannot apply diversity or explore")
    if signatures.SERVING_DEFAULT not in names:
        raise PolicyError(f"{backend.export_dir}: neither '{signatures.RECOMMEND}' nor "
                          f"'{signatures.SERVING_DEFAULT}' signature")
    return signatures.SERVING_DEFAULT


class ModelPolicy:
    def __init__(self, name: str, backend, controls: Mapping[str, float],
                 track_ids: np.ndarray, seed: int = 0) -> None:
        self.name, self.source = name, backend.export_dir
        self._backend, self.controls, self._seed = backend, dict(controls), seed
        self._signature = _check_signatures(backend, any(controls.values()))
        self._track_ids = track_ids
        self._index = pd.Index(track_ids)

    def recommend(self, requests: Requests) -> Lists:
        parts = [self._call(requests, rows)
                 for rows in np.array_split(np.arange(len(requests.users)),
                                            max(1, -(-len(requests.users) // MAX_ROWS)))]
        return Lists(np.concatenate([p.tracks for p in parts]),
                     np.concatenate([p.propensities for p in parts]))

    def _call(self, requests: Requests, rows: np.ndarray) -> Lists:
        ids = self._track_ids
        recent = [ids[r[r >= 0]].tolist() for r in requests.recent[rows]]
        # One seed per (policy seed, day, listener): reproducible, and independent per row.
        seeds = (self._seed * 1_000_003 + requests.day) * 1_000_033 + requests.users[rows] + 1
        inputs = signatures.recommend_controls_inputs(
            requests.user_ids[rows].tolist(), recent, requests.k,
            requests.platforms[rows].tolist(), requests.timestamps[rows].tolist(),
            diversity=self.controls.get("diversity", 0.0),
            explore=self.controls.get("explore", 0.0), seed=seeds.astype(np.int64).tolist(),
        )
        if self._signature == signatures.SERVING_DEFAULT:
            inputs = {k: v for k, v in inputs.items() if k not in signatures.CONTROL_INPUTS}
        outputs = self._backend.predict(self._signature, inputs)
        tracks = track_rows(outputs["track_ids"], self._index, len(rows), requests.k,
                            self.source)
        prop = np.asarray(outputs.get("propensities", np.ones(tracks.shape)), np.float64)
        return Lists(tracks, _pad(prop, requests.k, 1.0))


def track_rows(returned, index: pd.Index, rows: int, k: int, source: str) -> np.ndarray:
    """[rows, k] catalogue indices (-1 padding) of a signature's ``track_ids`` output;
    PolicyError naming `source` when its shape does not match the `rows` requested."""
    returned = np.asarray(returned)
    if returned.ndim != 2 or returned.shape[0] != rows:
        raise PolicyError(f"{source}: track_ids of shape {returned.shape} for {rows} rows")
    text = np.char.decode(returned.astype(bytes), "utf-8")
    return _pad(index.get_indexer(text.ravel()).reshape(text.shape), k)


def _pad(values: np.ndarray, k: int, fill=-1) -> np.ndarray:
    if values.shape[1] >= k:
        return values[:, :k]
    return np.pad(values, ((0, 0), (0, k - values.shape[1])), constant_values=fill)


def latest_export(path: str) -> str:
    """``path`` if it holds ``saved_model.pb``, else its latest numbered version."""
    from crossfade.serving.model_base_path import served_versions
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise PolicyError(f"policy path {path}: no such folder")
    versions = served_versions(path)
    if not versions:
        raise PolicyError(f"policy path {path}: neither a SavedModel (saved_model.pb) nor a "
                          "model base path with numbered versions")
    return os.path.join(path, versions[-1])


# -- baselines ------------------------------------------------------------------------------


class ChartPolicy:
    def __init__(self, chart: np.ndarray) -> None:
        self.name, self.source = CHART, "top chart: most streamed tracks of the last week"
        self._chart = chart

    def recommend(self, requests: Requests) -> Lists:
        top = _pad(self._chart[None, : requests.k], requests.k)
        n = len(requests.users)
        return Lists(np.repeat(top, n, axis=0), np.ones((n, requests.k)))


class RandomPolicy:
    def __init__(self, release_day: np.ndarray, seed: int = 0) -> None:
        self.name, self.source = RANDOM, "uniformly random released tracks"
        self.release_day, self._seed = release_day, seed

    def recommend(self, requests: Requests) -> Lists:
        rng = np.random.default_rng([self._seed, 17, requests.day])
        pool = np.flatnonzero(self.release_day <= requests.day)
        n, k = len(requests.users), min(requests.k, len(pool))
        # k distinct tracks per row in random order: the k smallest of uniform keys, sorted
        # (a uniformly random permutation's first k), in blocks of rows to bound memory.
        picks = np.empty((n, k), dtype=np.int64)
        for lo in range(0, n, 512):
            keys = rng.random((min(512, n - lo), len(pool)))
            first = np.argpartition(keys, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(keys, first, axis=1), axis=1)
            picks[lo : lo + 512] = pool[np.take_along_axis(first, order, axis=1)]
        prop = 1.0 / (len(pool) - np.arange(k, dtype=np.float64))
        return Lists(_pad(picks, requests.k), _pad(np.tile(prop, (n, 1)), requests.k, 1.0))
