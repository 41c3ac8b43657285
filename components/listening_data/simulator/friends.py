"""Friend groups: listeners who know each other and share some taste (for Blend).

Friends' tastes overlap more than strangers' (what makes a Blend for two friends worth
making), so groups are drawn from the listeners' taste vectors, after the world is built:
nothing else in the world or the logs changes, and ``friends.csv`` is a file of its own.

* Human listeners (never bots) are visited in a random order; each one not yet in a group
  founds one with probability `FOUNDING_PROBABILITY`, of size 2 to 5 (`GROUP_SIZES`, with
  probabilities `GROUP_SIZE_WEIGHTS`).
* The founder draws `CANDIDATES` listeners not yet in a group and takes the size − 1 of them
  whose taste is closest to theirs by cosine plus Gumbel noise of scale `TASTE_NOISE` (so
  friends lean towards similar taste without all being their nearest neighbours).
* Every pair within a group is a friendship, written in both directions as Last.fm's
  ``user_friends.dat`` lists them (`layout.FRIEND_COLUMNS`), sorted.

Deterministic from the seed, on its own random stream.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import FRIEND_COLUMNS
from crossfade.components.listening_data.simulator.sampling import stream_rng
from crossfade.components.listening_data.simulator.world import World

FOUNDING_PROBABILITY = 0.25
GROUP_SIZES = (2, 3, 4, 5)
GROUP_SIZE_WEIGHTS = (0.55, 0.25, 0.12, 0.08)
CANDIDATES = 50
TASTE_NOISE = 0.1
_STREAM = 400


def friend_groups(world: World) -> list[np.ndarray]:
    """Each group's user indices, founder first, in founding order."""
    rng = stream_rng(world.seed, _STREAM)
    vec = world.users.vec / np.linalg.norm(world.users.vec, axis=1, keepdims=True)
    humans = rng.permutation(world.users.humans)
    free = np.ones(len(world.users.user_id), bool)
    free[world.users.bots] = False
    groups = []
    for founder in humans:
        if not free[founder] or rng.random() >= FOUNDING_PROBABILITY:
            continue
        free[founder] = False
        pool = np.flatnonzero(free)
        if len(pool) == 0:
            break
        size = rng.choice(GROUP_SIZES, p=GROUP_SIZE_WEIGHTS)
        drawn = rng.choice(pool, size=min(CANDIDATES, len(pool)), replace=False)
        closeness = vec[drawn] @ vec[founder] + rng.gumbel(0.0, TASTE_NOISE, len(drawn))
        members = drawn[np.argsort(-closeness, kind="stable")[:size - 1]]
        free[members] = False
        groups.append(np.concatenate([[founder], members]))
    return groups


def friends_frame(world: World) -> pd.DataFrame:
    """``friends.csv`` content: every pair within a group, both directions, sorted."""
    ids = world.users.user_id
    pairs = [(ids[a], ids[b]) for group in friend_groups(world)
             for a, b in itertools.permutations(group, 2)]
    frame = pd.DataFrame(pairs, columns=list(FRIEND_COLUMNS))
    return frame.sort_values(list(FRIEND_COLUMNS), kind="stable").reset_index(drop=True)
