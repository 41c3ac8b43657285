"""A simulator-made data folder, read back as the world that wrote it plus its listening so far.

`SimulatedData.load` rebuilds the generator's world (`simulator.world`) from the folder's
``manifest.json`` (preset parameters and seed) and checks that the folder's ``catalogue.csv``
and ``users.csv`` hold exactly that world's tracks and listeners, so that simulated listeners
answer for the very data a model was trained on. A folder not made by the simulator (imported
data, a hand-edited catalogue) is refused with a `NotSimulatedError` naming what differs.

It also reads every plays span (the generator's days and any rounds of `crossfade simulate
--rounds` appended after them) and keeps the human streams (>= 30 s; bots are known to the
simulator): each listener's most recent streamed tracks (the query a client sends), the
(listener, track) streams the environment's discovery starts from, and the most-streamed
tracks of the last week (the top-chart policy).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data import layout
from crossfade.components.listening_data.simulator.generator import FORMAT
from crossfade.components.listening_data.simulator.presets import SimulatorPreset, resolve_preset
from crossfade.components.listening_data.simulator.responses import SKIP_THRESHOLD_MS
from crossfade.components.listening_data.simulator.world import World, build_world

#: Tracks of a listener's recent history kept for its queries (the model's history length).
RECENT_TRACKS = 40
#: Days of streams the top chart counts.
CHART_DAYS = 7


class NotSimulatedError(ValueError):
    """The folder was not written by crossfade's simulator, or no longer matches it."""


@dataclass
class SimulatedData:
    data_dir: str
    world: World
    num_days: int                 # spans present: the next simulated day's 0-based index
    recent: np.ndarray            # [users, RECENT_TRACKS] track indices, most recent first, -1 pad
    history: tuple[np.ndarray, np.ndarray]   # (user, track) indices of every stream so far
    chart: np.ndarray             # track indices, most streamed in the last CHART_DAYS first

    @property
    def humans(self) -> np.ndarray:
        return self.world.users.humans

    @classmethod
    def load(cls, data_dir: str) -> "SimulatedData":
        world = _world_of(data_dir)
        plays, num_days = _read_plays(data_dir, world)
        # What counts: streams (>= 30 s) of human listeners (the simulator knows the bots).
        human = ~world.users.is_bot[plays.user.to_numpy()]
        streamed = plays[(plays.ms.to_numpy() >= SKIP_THRESHOLD_MS) & human]
        return cls(
            data_dir=data_dir, world=world, num_days=num_days,
            recent=_recent_tracks(streamed, len(world.users.user_id)),
            history=(streamed.user.to_numpy(), streamed.track.to_numpy()),
            chart=_chart(streamed, num_days),
        )


def _world_of(data_dir: str) -> World:
    path = os.path.join(data_dir, layout.MANIFEST_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise NotSimulatedError(f"{path}: no readable simulator manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise NotSimulatedError(
            f"{path}: format {found!r}, not {FORMAT!r}: simulated listeners exist only for data "
            "made by `crossfade generate`"
        )
    try:
        names = {f.name for f in dataclasses.fields(SimulatorPreset)}
        preset = resolve_preset(SimulatorPreset(
            **{k: v for k, v in manifest["preset_parameters"].items() if k in names}
        ))
        world = build_world(preset, int(manifest["seed"]))
    except (KeyError, TypeError, ValueError) as error:
        raise NotSimulatedError(f"{path}: bad preset_parameters or seed ({error})") from None
    _check_ids(data_dir, layout.CATALOGUE_FILE, "track_id", world.catalogue.track_id)
    _check_ids(data_dir, layout.USERS_FILE, "user_id", world.users.user_id)
    return world


def _check_ids(data_dir: str, name: str, column: str, expected: np.ndarray) -> None:
    path = os.path.join(data_dir, name)
    try:
        found = pd.read_csv(path, usecols=[column], dtype=str, keep_default_na=False)[column]
    except (OSError, ValueError) as error:
        raise NotSimulatedError(f"{path}: cannot read column {column!r} ({error})") from None
    if len(found) != len(expected):
        raise NotSimulatedError(
            f"{path}: {len(found)} rows, but the manifest's simulator writes {len(expected)}"
        )
    differs = np.flatnonzero(found.to_numpy() != expected)
    if len(differs):
        row = int(differs[0])
        raise NotSimulatedError(
            f"{path}: row {row + 2}, field {column}: {found.iloc[row]!r} is not the simulator's "
            f"{expected[row]!r}; the data no longer matches its manifest"
        )


def _read_plays(data_dir: str, world: World) -> tuple[pd.DataFrame, int]:
    """Every play as (day, second order, user, track, ms) indices, and the number of days."""
    spans = sorted(glob.glob(os.path.join(data_dir, layout.PLAYS_DIR, layout.SPAN_PREFIX + "*")))
    days = [int(m.group(1)) for s in spans if (m := re.search(r"(\d+)$", s))]
    if not days:
        raise NotSimulatedError(f"{data_dir}: no {layout.PLAYS_PATTERN} files")
    user_of = pd.Index(world.users.user_id)
    track_of = pd.Index(world.catalogue.track_id)
    frames = []
    for span, number in zip(spans, days, strict=True):
        path = os.path.join(span, layout.PLAYS_FILE)
        df = pd.read_csv(path, usecols=["ts", "username", "ms_played", "spotify_track_uri"],
                         dtype={"ts": str, "username": str, "spotify_track_uri": str,
                                "ms_played": np.int64}, keep_default_na=False)
        user, track = user_of.get_indexer(df.username), track_of.get_indexer(df.spotify_track_uri)
        bad = np.flatnonzero((user < 0) | (track < 0))
        if len(bad):
            row = int(bad[0])
            field = "username" if user[row] < 0 else "spotify_track_uri"
            raise NotSimulatedError(
                f"{path}: row {row + 2}, field {field}: not a listener or track of the simulator"
            )
        frames.append(pd.DataFrame({"day": number - 1, "ts": df.ts, "user": user,
                                    "track": track, "ms": df.ms_played}))
    plays = pd.concat(frames, ignore_index=True)
    return plays.sort_values(["ts"], kind="stable", ignore_index=True), max(days)


def _recent_tracks(plays: pd.DataFrame, num_users: int) -> np.ndarray:
    recent = np.full((num_users, RECENT_TRACKS), -1, dtype=np.int64)
    latest = plays.iloc[::-1]
    rank = latest.groupby("user").cumcount().to_numpy()
    keep = rank < RECENT_TRACKS
    recent[latest.user.to_numpy()[keep], rank[keep]] = latest.track.to_numpy()[keep]
    return recent


def _chart(streamed: pd.DataFrame, num_days: int) -> np.ndarray:
    last_week = streamed[streamed.day >= num_days - CHART_DAYS]
    counts = last_week.track.value_counts(sort=False)
    order = np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))
    return counts.index.to_numpy()[order]
