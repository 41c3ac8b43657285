"""A Blend as a simulation policy: every member of a friend group gets the group's one list.

`BlendPolicy` answers a day's `Requests` like any `Policy`, but per group: the members'
recent streams go to the model's ``blend`` signature in one row, with the session time and
platform of the group's first member (the one who opens the Blend), and every member's row of
the returned `Lists` is the group's list. `experiment.run` then has each member's own
simulated listener answer that same list, which is how a Blend is heard: one list, each
member judging it by their own taste. Propensities are 1 (the blend is deterministic);
a listener in no group gets an empty list (every slot -1).

Groups are disjoint (a listener belongs to at most one), and a day's requests must hold every
member of each group they touch: a group is served whole or not at all (`PolicyError`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from crossfade.components.simulation.policies import (
    MAX_ROWS,
    Lists,
    PolicyError,
    Requests,
    track_rows,
)
from crossfade.serving import signatures


class BlendPolicy:
    """The ``blend`` signature of an export, one call row per group."""

    def __init__(self, backend, groups: Sequence[np.ndarray], strategy: str,
                 track_ids: np.ndarray) -> None:
        if strategy not in signatures.BLEND_STRATEGIES:
            raise PolicyError(f"unknown blend strategy {strategy!r} (known: "
                              f"{sorted(signatures.BLEND_STRATEGIES)})")
        names = backend.signature_names
        if names is not None and signatures.BLEND not in names:
            raise PolicyError(f"{backend.export_dir}: no '{signatures.BLEND}' signature")
        self.name, self.source = f"blend:{strategy}", backend.export_dir
        self._backend, self._strategy = backend, strategy
        self._groups = [np.asarray(g, np.int64) for g in groups]
        self._group_of = _group_index(self._groups)
        self._track_ids, self._index = track_ids, pd.Index(track_ids)

    def recommend(self, requests: Requests) -> Lists:
        row_of = {int(u): i for i, u in enumerate(requests.users)}
        touched = list(dict.fromkeys(self._group_of[int(u)] for u in requests.users
                                     if int(u) in self._group_of))
        tracks = np.full((len(requests.users), requests.k), -1, np.int64)
        for start in range(0, len(touched), MAX_ROWS):
            batch = [self._groups[g] for g in touched[start:start + MAX_ROWS]]
            rows = [[_row(row_of, int(u), self.name) for u in group] for group in batch]
            lists = self._call(requests, rows)
            for group_rows, top in zip(rows, lists, strict=True):
                tracks[group_rows] = top
        return Lists(tracks, np.ones(tracks.shape))

    def _call(self, requests: Requests, rows: list[list[int]]) -> np.ndarray:
        """[G, k] track indices of the groups whose members are request `rows`."""
        ids = self._track_ids
        inputs = signatures.blend_inputs(
            [requests.user_ids[r].tolist() for r in rows],
            [[ids[recent[recent >= 0]].tolist() for recent in requests.recent[r]]
             for r in rows],
            requests.k, self._strategy,
            platform=[requests.platforms[r[0]] for r in rows],
            timestamp=[int(requests.timestamps[r[0]]) for r in rows])
        outputs = self._backend.predict(signatures.BLEND, inputs)
        return track_rows(outputs["track_ids"], self._index, len(rows), requests.k,
                          f"{self.source} ({signatures.BLEND})")


def _group_index(groups: Sequence[np.ndarray]) -> dict[int, int]:
    """{listener: group} for disjoint groups of 1..`signatures.MAX_MEMBERS` listeners."""
    group_of: dict[int, int] = {}
    for index, group in enumerate(groups):
        if not 1 <= len(group) <= signatures.MAX_MEMBERS:
            raise PolicyError(f"group {index}: a blend has 1 to {signatures.MAX_MEMBERS} "
                              f"members, got {len(group)}")
        for user in group:
            if int(user) in group_of:
                raise PolicyError(f"listener {user} is in groups {group_of[int(user)]} and "
                                  f"{index}: blend groups must be disjoint")
            group_of[int(user)] = index
    return group_of


def _row(row_of: dict[int, int], user: int, name: str) -> int:
    if user not in row_of:
        raise PolicyError(f"{name}: listener {user}'s group is requested without them; a "
                          "group is served whole")
    return row_of[user]
