"""A simulated A/B test: every policy serves the same listeners for D days.

Each simulated day continues the data (day ``num_days``, then the next, ...). Every listener
(the first ``users`` human listeners, default all) opens one session a day, at its usual
hour (its ``peak_hour``, local time) on its main platform, and gets ``k`` tracks from each
policy. Each policy has its own `ListeningEnvironment` over the same world and seed, so the
arms differ only by what they served (common random numbers: the same uniforms decide a skip
in every arm, which removes most of the noise from the comparison). A listener's next query
carries its streams so far, most recent first, as a client would send them. With long-term
effects on, what an arm served yesterday (satiation) and the artists its listeners discovered
(discovery) shape today's answers in that arm only.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from crossfade.components.listening_data.simulator.environment import (
    ListeningEnvironment,
    ListeningParameters,
    LongTermEffects,
)
from crossfade.components.listening_data.simulator.vocabulary import COUNTRY_OFFSET_S, PLATFORMS
from crossfade.components.simulation.metrics import DayLog
from crossfade.components.simulation.policies import Policy, Requests
from crossfade.components.simulation.simulated_data import SimulatedData


@dataclass(frozen=True)
class SimulationSettings:
    users: "int | None" = None    # the first N human listeners; None: all
    days: int = 1
    k: int = 10
    seed: int = 0
    effects: LongTermEffects = field(default_factory=LongTermEffects)
    listening: ListeningParameters = field(default_factory=ListeningParameters)

    def __post_init__(self) -> None:
        if self.users is not None and self.users < 1:
            raise ValueError(f"users must be at least 1, not {self.users}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, not {self.days}")
        if not 1 <= self.k <= 100:
            raise ValueError(f"k must be in [1, 100], not {self.k}")


@dataclass
class Arm:
    """One policy's side of the test: its listeners' state and what it served."""

    policy: Policy
    env: ListeningEnvironment
    recent: np.ndarray            # [users, R] track indices, most recent first
    logs: list[DayLog] = field(default_factory=list)
    serve_seconds: float = 0.0    # in the policy (model calls)
    respond_seconds: float = 0.0  # in the environment


def listeners(data: SimulatedData, settings: SimulationSettings) -> np.ndarray:
    humans = data.humans
    return humans if settings.users is None else humans[: settings.users]


def new_arm(data: SimulatedData, policy: Policy, settings: SimulationSettings) -> Arm:
    env = ListeningEnvironment(data.world, settings.effects, settings.listening,
                               seed=settings.seed, history=data.history)
    return Arm(policy, env, data.recent.copy())


def main_platform(data: SimulatedData, users: np.ndarray) -> np.ndarray:
    """Each listener's most used platform (index into PLATFORMS)."""
    mix = np.diff(data.world.users.platform_cdf[users], axis=1, prepend=0.0)
    return np.argmax(mix, axis=1)


def requests_for(data: SimulatedData, users: np.ndarray, day: int, recent: np.ndarray,
                 k: int) -> Requests:
    """Each listener's session of ``day``: at its peak local hour, on its main platform."""
    w = data.world
    midnight = dt.datetime.combine(w.start + dt.timedelta(days=day), dt.time(),
                                   tzinfo=dt.timezone.utc).timestamp()
    local = w.users.peak_hour[users] * 3600.0
    utc = (local - COUNTRY_OFFSET_S[w.users.country[users]]) % 86_400.0
    main = main_platform(data, users)
    return Requests(
        day=day, users=users, user_ids=w.users.user_id[users], recent=recent[users],
        timestamps=(midnight + utc).astype(np.int64),
        platforms=np.array(PLATFORMS, dtype=object)[main], k=k,
    )


def run_day(data: SimulatedData, arm: Arm, users: np.ndarray, day: int, k: int) -> DayLog:
    started = time.perf_counter()
    requests = requests_for(data, users, day, arm.recent, k)
    lists = arm.policy.recommend(requests)
    served = time.perf_counter()
    responses = arm.env.respond(day, users, lists.tracks)
    arm.serve_seconds += served - started
    arm.respond_seconds += time.perf_counter() - served
    arm.recent[users] = _with_streams(arm.recent[users], lists.tracks, responses.streamed)
    log = DayLog(day, users, lists.tracks, lists.propensities, responses, requests)
    arm.logs.append(log)
    return log


def _with_streams(recent: np.ndarray, tracks: np.ndarray, streamed: np.ndarray) -> np.ndarray:
    """``recent`` with each row's streams of ``tracks`` in front, the last stream first."""
    new = np.where(streamed, tracks, -1)[:, ::-1]
    merged = np.concatenate([new, recent], axis=1)
    # Stable sort on "is padding" moves every track to the front, keeping its order.
    order = np.argsort(merged < 0, axis=1, kind="stable")
    return np.take_along_axis(merged, order, axis=1)[:, : recent.shape[1]]


def run(data: SimulatedData, policies: Sequence[Policy], settings: SimulationSettings,
        progress: "Callable[[str], None] | None" = None,
        users: "np.ndarray | None" = None) -> list[Arm]:
    """Every policy for ``settings.days`` days from the data's next day; the arms' logs.
    ``users``: the listeners (indices) to serve, for callers that choose them (a Blend's
    friend groups); ``settings.users`` must then be None."""
    if users is not None and settings.users is not None:
        raise ValueError("give the listeners either as settings.users or as users, not both")
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    users = listeners(data, settings) if users is None else np.asarray(users, np.int64)
    arms = [new_arm(data, p, settings) for p in policies]
    started = time.perf_counter()
    for d in range(settings.days):
        day = data.num_days + d
        for arm in arms:
            log = run_day(data, arm, users, day, settings.k)
            rate = log.responses.streamed.sum() / max(1, (log.tracks >= 0).sum())
            say(f"  day {d + 1}/{settings.days}  {arm.policy.name:<28} stream rate {rate:.3f}"
                f"  ({time.perf_counter() - started:.0f} s)")
    return arms
