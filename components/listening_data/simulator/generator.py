"""The log generator: writes a simulated service's data set, a pure function of (preset, seed).

``generate`` writes a track catalogue, a user table, one CSV of plays per simulated day (laid out
as ExampleGen spans), the listeners' likes and friend groups and the bot ground truth. The same
arguments give byte-identical files on the same platform (numpy version and CPU). The generator is
vectorised with numpy; Python loops run per day, per genre, per session position or per chunk of
users, never per play. What each day holds is `sessions` (humans) and `bots`; the world they are
drawn from is `world`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import (
    BOT_COLUMNS,
    BOTS_FILE,
    CATALOGUE_FILE,
    FRIENDS_FILE,
    LIKES_FILE,
    MANIFEST_FILE,
    PLAYS_DIR,
    PLAYS_FILE,
    SPAN_PREFIX,
    TRUTH_DIR,
    USERS_FILE,
    span_name,
)
from crossfade.components.listening_data.simulator.bots import bot_day
from crossfade.components.listening_data.simulator.friends import friends_frame
from crossfade.components.listening_data.simulator.likes import Likes, day_likes, likes_frame
from crossfade.components.listening_data.simulator.plays import write_day
from crossfade.components.listening_data.simulator.presets import (
    PRESETS,
    SimulatorPreset,
    resolve_preset,
)
from crossfade.components.listening_data.simulator.sessions import human_day
from crossfade.components.listening_data.simulator.world import build_world

FORMAT = "crossfade-simulator/1"  # the "format" of the manifest


@dataclass(frozen=True)
class SimulationSummary:
    """What ``generate`` wrote: where, from which preset and seed, and how much."""

    out_dir: str
    preset: str
    seed: int
    num_users: int
    num_bots: int
    num_tracks: int
    num_plays: int
    num_bot_plays: int
    num_days: int


def span_dir(out_dir: str, day: int) -> str:
    """Folder of the plays of 0-based ``day``: ``plays/span-NNNN`` with NNNN = day + 1."""
    return os.path.join(out_dir, PLAYS_DIR, span_name(day + 1))


def generate(preset: "str | SimulatorPreset", out_dir: str, seed: int = 0) -> SimulationSummary:
    """Simulate ``preset`` with ``seed`` and write the data set under ``out_dir``.

    Writes ``catalogue.csv``, ``users.csv``, ``plays/span-NNNN/plays.csv`` (one per day, NNNN from
    0001, rows sorted by ``ts``), ``likes.csv``, ``friends.csv``, ``truth/bots.csv`` and
    ``manifest.json``. Existing ``plays/span-*`` folders under ``out_dir`` are removed first so
    that a smaller rerun leaves no stale spans behind. The output is a pure function of ``(preset,
    seed)``.
    """
    p = resolve_preset(preset)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    seed = int(seed)
    os.makedirs(out_dir, exist_ok=True)
    plays_root = os.path.join(out_dir, PLAYS_DIR)
    if os.path.isdir(plays_root):
        for name in os.listdir(plays_root):
            if re.fullmatch(re.escape(SPAN_PREFIX) + r"\d{4}", name):
                shutil.rmtree(os.path.join(plays_root, name))

    world = build_world(p, seed)
    cat, users, start = world.catalogue, world.users, world.start

    cat.frame.to_csv(os.path.join(out_dir, CATALOGUE_FILE), index=False, lineterminator="\n")
    users.frame.to_csv(os.path.join(out_dir, USERS_FILE), index=False, lineterminator="\n")
    os.makedirs(os.path.join(out_dir, TRUTH_DIR), exist_ok=True)
    pd.DataFrame({"user_id": users.user_id[users.bots]}, columns=list(BOT_COLUMNS)).to_csv(
        os.path.join(out_dir, TRUTH_DIR, BOTS_FILE), index=False, lineterminator="\n"
    )

    plays_per_day = []
    bot_plays = 0
    likes: list[Likes] = []
    liked: set[tuple[int, int]] = set()
    for day in range(p.num_days):
        date = start + dt.timedelta(days=day)
        human = human_day(world, day, date.weekday())
        bot = bot_day(seed, day, users, world.bots)
        path = os.path.join(span_dir(out_dir, day), PLAYS_FILE)
        n = write_day(path, date, [human, bot], cat, users)
        plays_per_day.append(n)
        bot_plays += len(bot.user)
        likes.append(day_likes(world, day, human, liked))
    likes_frame(world, likes).to_csv(
        os.path.join(out_dir, LIKES_FILE), index=False, lineterminator="\n"
    )
    friends_frame(world).to_csv(
        os.path.join(out_dir, FRIENDS_FILE), index=False, lineterminator="\n"
    )

    summary = SimulationSummary(
        out_dir=out_dir, preset=p.name, seed=seed, num_users=p.num_users,
        num_bots=len(users.bots), num_tracks=p.num_tracks, num_plays=int(sum(plays_per_day)),
        num_bot_plays=int(bot_plays), num_days=p.num_days,
    )
    manifest = {
        "format": FORMAT,
        "preset": p.name,
        "seed": seed,
        "start_date": start.isoformat(),
        "num_days": p.num_days,
        "num_users": p.num_users,
        "num_bots": summary.num_bots,
        "num_tracks": p.num_tracks,
        "num_artists": p.num_artists,
        "num_new_releases": int((cat.release_day >= 1).sum()),
        "num_plays": summary.num_plays,
        "num_bot_plays": summary.num_bot_plays,
        "plays_per_day": plays_per_day,
        "preset_parameters": dataclasses.asdict(p),
    }
    with open(os.path.join(out_dir, MANIFEST_FILE), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return summary


def main(argv: "list[str] | None" = None) -> None:
    """Command line: ``python -m crossfade.components.listening_data.simulator --preset NAME OUT``.

    ``--preset`` defaults to ``default``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    summary = generate(args.preset, args.out_dir, args.seed)
    print(f"{summary} in {time.perf_counter() - t0:.1f}s")

