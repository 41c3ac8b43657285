"""The closed loop (`crossfade simulate --rounds R`): a model's lists become its successor's data.

Each model policy gets its own lineage under ``<out>/loop/effects-<on|off>/<policy>/``: a copy
of the data (the input folder is never written) and a pipeline output. Round 0 trains the real
pipeline once on the input data (``<out>/loop/base``; TFX's cache makes a rerun cheap). Then,
per round ``r = 1..R`` and lineage:

1. the lineage's latest pushed model (round 1: the base model) serves that day's sessions
   through its SavedModel signatures, with the policy's controls (`policies.ModelPolicy`);
2. the lineage's listeners answer (`experiment.run_day`; one `ListeningEnvironment` for all its
   rounds, so satiation and discovery carry over from round to round);
3. the day's plays are appended to the lineage's data as a new span: the generator's organic
   listening of that day (`sessions.human_day`, the same in every lineage), its bots, and
   every heard slot of the served lists as a play (a skip is a short play, as in Spotify's
   logs); the day's new likes -- organic ones drawn as the generator draws them, and the
   served slots the listeners liked -- are added to the lineage's ``likes.csv``, each
   (listener, track) once, at the end of the liked play;
4. unless it is the last round, the real pipeline retrains on the grown data
   (`local_runner.run`; components whose inputs did not change come from TFX's cache) and the
   Pusher pushes the next model if the Evaluator blesses it.

Organic listening keeps the listeners' initial tastes (see `environment`): what changes from
lineage to lineage is the recommender's own traffic and what it teaches the next model. Each
round's queries carry the lineage's latest streams, organic ones included; discovery counts
as known the artists streamed in the input data and those the lineage's lists got streamed
(later organic streams come from the initial pools, whose artists the listeners know).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import sys
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import LIKE_COLUMNS, LIKES_FILE, PLAYS_FILE
from crossfade.components.listening_data.simulator.bots import bot_day
from crossfade.components.listening_data.simulator.environment import Responses
from crossfade.components.listening_data.simulator.generator import span_dir
from crossfade.components.listening_data.simulator.likes import (
    Likes,
    day_like_candidates,
    first_likes,
    likes_frame,
)
from crossfade.components.listening_data.simulator.plays import DayPlays, write_day
from crossfade.components.listening_data.simulator.sessions import human_day
from crossfade.components.listening_data.simulator.vocabulary import (
    REASON_END_INDEX,
    REASON_START_INDEX,
)
from crossfade.components.simulation import experiment, metrics, policies
from crossfade.components.simulation.simulated_data import SimulatedData

#: Seconds between the end of one served play and the start of the next (autoplay).
_GAP_S = 0.5
LOOP_DIR = "loop"


@dataclasses.dataclass
class Lineage:
    """One policy's loop: its data, its pipeline output, its listeners."""

    spec: policies.PolicySpec
    effects_label: str
    root: str
    arm: "experiment.Arm | None" = None

    @property
    def data_dir(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def output_dir(self) -> str:
        return os.path.join(self.root, "output")


def served_plays(data: SimulatedData, requests: policies.Requests, tracks: np.ndarray,
                 responses: Responses) -> DayPlays:
    """Every heard slot of the day's lists as a play, in the generator's play format."""
    rows, cols = np.nonzero(responses.heard)  # row-major: each list's slots in order
    ms = responses.ms_played[rows, cols]
    midnight = _midnight(data, requests.day)
    start = (requests.timestamps - midnight).astype(np.float64)
    step = ms / 1000.0 + _GAP_S
    csum = np.cumsum(step)
    first = np.r_[True, rows[1:] != rows[:-1]]
    before = (csum - step)[first][np.cumsum(first) - 1]
    end = start[rows] + (csum - before) - _GAP_S  # play end times, Spotify's semantics
    skipped = responses.skipped[rows, cols]
    prev_skipped = np.r_[False, skipped[:-1]] & ~first
    users = requests.users[rows]
    keep = end < 86_400.0  # a day's span holds that day only
    rs, rend = REASON_START_INDEX, REASON_END_INDEX
    reason_start = np.where(first, rs["clickrow"],
                            np.where(prev_skipped, rs["fwdbtn"], rs["trackdone"]))
    n = int(keep.sum())
    return DayPlays(
        user=users[keep], second=end[keep],
        platform=experiment.main_platform(data, users)[keep], ms=ms[keep],
        country=data.world.users.country[users][keep], track=tracks[rows, cols][keep],
        reason_start=reason_start[keep],
        reason_end=np.where(skipped, rend["fwdbtn"], rend["trackdone"])[keep],
        shuffle=np.zeros(n, bool), skipped=skipped[keep], offline=np.zeros(n, bool),
        order=np.flatnonzero(keep),
    )


def _midnight(data: SimulatedData, day: int) -> int:
    date = data.world.start + dt.timedelta(days=day)
    return int(dt.datetime.combine(date, dt.time(), tzinfo=dt.timezone.utc).timestamp())


def served_like_candidates(served: DayPlays, responses: Responses) -> Likes:
    """The served plays (`served_plays`' rows) the listeners liked (`append_likes` puts
    them in time order with the day's other likes)."""
    rows, cols = np.nonzero(responses.heard)
    liked = np.flatnonzero(responses.liked[rows, cols][served.order])
    return Likes(user=served.user[liked], track=served.track[liked],
                 second=served.second[liked])


def append_likes(data: SimulatedData, lineage_data: str, day: int,
                 candidates: Sequence[Likes]) -> int:
    """Adds ``day``'s new likes among ``candidates`` to the lineage's likes.csv (replaced
    whole, atomically); returns how many."""
    w = data.world
    path = os.path.join(lineage_data, LIKES_FILE)
    existing = (pd.read_csv(path, dtype=str, keep_default_na=False) if os.path.exists(path)
                else pd.DataFrame(columns=list(LIKE_COLUMNS)))
    users = pd.Index(w.users.user_id).get_indexer(existing.user_id)
    tracks = pd.Index(w.catalogue.track_id).get_indexer(existing.track_id)
    liked = {(int(u), int(t)) for u, t in zip(users, tracks, strict=True)}
    merged = Likes(*(np.concatenate([getattr(c, name) for c in candidates])
                     for name in ("user", "track", "second")))
    order = np.argsort(merged.second, kind="stable")
    today = first_likes(Likes(merged.user[order], merged.track[order], merged.second[order]),
                        liked)
    staging = path + ".partial"
    pd.concat([existing, likes_frame(w, [today], first_day=day)]).to_csv(
        staging, index=False, lineterminator="\n")
    os.replace(staging, path)
    return len(today.user)


def append_day(data: SimulatedData, lineage_data: str, log: metrics.DayLog) -> int:
    """Writes ``log.day``'s span into ``lineage_data`` (organic plays, bots, served plays)
    and adds the day's likes; returns the plays written."""
    w = data.world
    date = w.start + dt.timedelta(days=log.day)
    path = os.path.join(span_dir(lineage_data, log.day), PLAYS_FILE)
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: the lineage already has day {log.day}")
    organic = human_day(w, log.day, date.weekday())
    bots = bot_day(w.seed, log.day, w.users, w.bots)
    served = served_plays(data, log.requests, log.tracks, log.responses)
    written = write_day(path, date, [organic, bots, served], w.catalogue, w.users)
    append_likes(data, lineage_data, log.day, [day_like_candidates(w, log.day, organic),
                                               served_like_candidates(served, log.responses)])
    return written


def _lineage_name(spec: policies.PolicySpec) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec.name)


def prepare(data_dir: str, out_dir: str, specs: Sequence[policies.PolicySpec],
            effects_labels: Sequence[str]) -> list[Lineage]:
    """Checks the loop's settings and creates each lineage's data copy (nothing else)."""
    not_models = [s.source for s in specs if s.source in (policies.CHART, policies.RANDOM)]
    if not_models:
        raise policies.PolicyError(f"--rounds retrains a model: {not_models} cannot be a "
                                   "policy of the loop")
    root = os.path.join(out_dir, LOOP_DIR)
    lineages = [Lineage(spec, label, os.path.join(root, f"effects-{label}",
                                                  _lineage_name(spec)))
                for label in effects_labels for spec in specs]
    roots = [ln.root for ln in lineages]
    if len(set(roots)) != len(roots):
        raise policies.PolicyError(f"policies named twice: {sorted(s.name for s in specs)}")
    taken = [ln.root for ln in lineages if os.path.exists(ln.root)]
    if taken:
        raise FileExistsError(f"{taken[0]} exists: a loop is never written over; choose "
                              "another --out or remove it")
    for lineage in lineages:
        shutil.copytree(data_dir, lineage.data_dir)
    return lineages


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    rounds: int
    overrides: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, not {self.rounds}")


def train(data_dir: str, output_dir: str, overrides: Mapping[str, object]) -> str:
    """Runs the real pipeline; the latest pushed export under ``output_dir``."""
    from crossfade.pipeline import local_runner
    from crossfade.pipeline.configs import PipelineConfig
    config = PipelineConfig.for_data(os.path.abspath(data_dir), os.path.abspath(output_dir),
                                     overrides=dict(overrides))
    local_runner.run(config)
    return policies.latest_export(config.serving_base_path)


def run(data_dir: str, out_dir: str, specs: Sequence[policies.PolicySpec],
        effects: Mapping[str, object], settings: experiment.SimulationSettings,
        loop: LoopSettings, say: "Callable[[str], None] | None" = None
        ) -> tuple[list[dict], list[Lineage]]:
    """The loop's rounds for every (effects, policy): the report's ``rounds`` entries, and the
    lineages (each arm's logs hold all its rounds)."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    lineages = prepare(data_dir, out_dir, specs, list(effects))
    say("Round 0: training the base model on the input data")
    base = train(data_dir, os.path.join(out_dir, LOOP_DIR, "base"), loop.overrides)
    rounds = []
    for r in range(1, loop.rounds + 1):
        for lineage in lineages:
            rounds.append(_round(lineage, r, base, effects[lineage.effects_label], settings,
                                 loop, say))
    return rounds, lineages


def _round(lineage: Lineage, r: int, base: str, effects, settings: experiment.SimulationSettings,
           loop: LoopSettings, say: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    data = SimulatedData.load(lineage.data_dir)
    export = base
    if os.path.isdir(os.path.join(lineage.output_dir, "serving")):
        export = policies.latest_export(os.path.join(lineage.output_dir, "serving",
                                                     "crossfade"))
    policy = policies.ModelPolicy(lineage.spec.name, policies.SavedModelBackend(export),
                                  lineage.spec.controls, data.world.catalogue.track_id,
                                  settings.seed)
    run_settings = dataclasses.replace(settings, effects=effects)
    if lineage.arm is None:
        lineage.arm = experiment.new_arm(data, policy, run_settings)
    lineage.arm.policy = policy
    # The next query carries everything streamed so far: organic plays included.
    lineage.arm.recent = data.recent.copy()
    users = experiment.listeners(data, run_settings)
    log = experiment.run_day(data, lineage.arm, users, data.num_days, settings.k)
    append_day(data, lineage.data_dir, log)
    summary = metrics.summarise(data.world, [log])
    say(f"Round {r} effects {lineage.effects_label} {lineage.spec.name}: stream rate "
        f"{summary['stream_rate']:.3f}, served by {export}")
    if r < loop.rounds:
        train(lineage.data_dir, lineage.output_dir, loop.overrides)
    return {"round": r, "effects": lineage.effects_label, "policy": lineage.spec.name,
            "summary": summary, "wall_seconds": time.perf_counter() - started,
            "model_version": export}
