"""One day's plays as columns (`DayPlays`) and their CSV file in Spotify's export format."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.layout import PLAY_COLUMNS
from crossfade.components.listening_data.simulator.catalogue import Catalogue
from crossfade.components.listening_data.simulator.csv_text import join_columns
from crossfade.components.listening_data.simulator.listeners import Users
from crossfade.components.listening_data.simulator.vocabulary import (
    COUNTRY_CODES,
    PLATFORMS,
    REASONS_END,
    REASONS_START,
)


@dataclass
class DayPlays:
    user: np.ndarray
    second: np.ndarray            # float seconds since 00:00 UTC of the day (play end)
    platform: np.ndarray
    ms: np.ndarray
    country: np.ndarray
    track: np.ndarray
    reason_start: np.ndarray
    reason_end: np.ndarray
    shuffle: np.ndarray
    skipped: np.ndarray
    offline: np.ndarray
    order: np.ndarray             # tie-breaker for sorting


def empty_day() -> DayPlays:
    z = np.zeros(0, dtype=np.int64)
    return DayPlays(
        user=z, second=z.astype(np.float64), platform=z, ms=z, country=z, track=z,
        reason_start=z, reason_end=z, shuffle=z.astype(bool), skipped=z.astype(bool),
        offline=z.astype(bool), order=z,
    )



_HMS = np.array(
    [f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)],
    dtype=object,
)
_TF = np.array(["false", "true"], dtype=object)
_FLAGS = np.array(
    [f"{_TF[a]},{_TF[b]},{_TF[c]}" for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=object
)


def write_day(
    path: str, date: dt.date, plays: list[DayPlays], cat: Catalogue, users: Users
) -> int:
    cols = {
        f.name: np.concatenate([getattr(d, f.name) for d in plays])
        for f in dataclasses.fields(DayPlays)
    }
    source = np.concatenate([np.full(len(d.user), i) for i, d in enumerate(plays)])
    sec = np.floor(cols["second"]).astype(np.int64)
    # Exact play end first, then stable tie-breakers, so that the order is reproducible.
    order = np.lexsort((cols["order"], cols["user"], source, cols["second"]))
    sec = sec[order]
    c = {k: v[order] for k, v in cols.items()}
    ts = (date.isoformat() + "T") + _HMS[sec]
    rows = join_columns(
        [
            ts,
            users.user_id[c["user"]],
            np.array(PLATFORMS, dtype=object)[c["platform"]],
            c["ms"].astype(str).astype(object),
            COUNTRY_CODES[c["country"]],
            cat.csv_fragment[c["track"]],
            np.array(REASONS_START, dtype=object)[c["reason_start"]],
            np.array(REASONS_END, dtype=object)[c["reason_end"]],
            _FLAGS[4 * c["shuffle"] + 2 * c["skipped"].astype(np.int64) + c["offline"]],
        ]
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(PLAY_COLUMNS) + "\n")
        if len(rows):
            f.write("\n".join(rows.tolist()))
            f.write("\n")
    return len(rows)
