"""crossfade's serving signatures: their names, and request tensors from plain values.

The names are the contract between the export (`crossfade.components.trainer.export`, which
documents every signature's inputs and outputs) and every client. The request builders are used
by the clients and by the warmup-request writer, so what warms a model up is exactly what
clients send (a test checks them against the exported input signature):

* ``serving_default``: ``user_id`` [B] string, ``recent_track_ids`` [B, n] string (most
  recent first), ``timestamp`` [B] int64 (<= 0: the server's now), ``platform`` [B] string,
  ``k`` [B] int32 -> ``track_ids`` [B, K] string, ``scores`` [B, K] float32
  (`recommend_inputs`).
* ``recommend``: the ``serving_default`` inputs plus the controls, every one required
  (`recommend_controls_inputs`; `CONTROL_INPUTS` lists them, `NEUTRAL_CONTROLS` gives the
  values that change nothing):
  ``exclude_track_ids`` [B, m] string ("" padding, any m >= 1; never returned),
  ``diversity`` [B] float32 in [0, 1] (0: pure relevance, else greedy MMR re-ranking),
  ``explore`` [B] float32 in [0, 1] (epsilon of epsilon-greedy sampling per slot),
  ``seed`` [B] int64 (the row's sampler seed; 0: derived from the request),
  ``released_within_days`` [B] int32 (0: no restriction; n > 0: only tracks released 0..n-1
  days before the timestamp's day, INVALID_ARGUMENT from a model without release dates),
  ``probe`` [B] int32 (>= 0; 0: the model's default) -> ``track_ids``, ``scores``,
  ``titles``, ``artists`` ("" when the catalogue has none) [B, K] string, ``propensities``
  [B, K] float32 (the probability the sampler chose that track in that slot given the earlier
  slots; 1.0 when nothing was sampled). Rows with fewer eligible tracks than K end in track
  id "". Out-of-range controls are INVALID_ARGUMENT from the model graph; the builder refuses
  them first with a ValueError naming the input (except ``released_within_days`` > 0 on a
  model without release dates, which only the server knows).
* ``similar_tracks``: ``track_id`` [B] string, ``k`` [B] int32 -> ``track_ids``, ``scores``,
  ``found`` [B] bool.
* ``blend``: one list for a group (`blend_inputs`): ``user_ids`` [B, M] string (M <=
  `MAX_MEMBERS`, "" padding), ``recent_track_ids`` [B, M, n] string, ``timestamp``,
  ``platform``, ``k``, ``strategy`` [B] int32 (`BLEND_STRATEGIES`), ``exclude_track_ids``
  [B, m] -> ``track_ids``, ``scores``, ``titles``, ``artists`` [B, K], ``member_scores``
  [B, K, M] float32, ``for_member`` [B, K] int32 (a member column; -1 for an empty slot).

`recent_track_ids` rows are padded with "" to one width, at least `RECENT_TRACKS_WIDTH` (the
model's history length): the REST row format and TF Serving's batching both need a
rectangle, and a fixed width lets requests from different users batch together. For the same
reason `exclude_track_ids` is at least one column wide and its width is rounded up to a power
of two, so requests with similar numbers of exclusions share a shape.
"""
import math
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from crossfade.components import features
from crossfade.components.trainer.blend import MAX_MEMBERS
from crossfade.components.trainer.blend import STRATEGIES as BLEND_STRATEGIES

# TF Serving's default signature key (tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY).
SERVING_DEFAULT = "serving_default"
RECOMMEND = "recommend"
BLEND = "blend"
SIMILAR_TRACKS = "similar_tracks"
QUERY_EMBEDDING = "query_embedding"
CANDIDATE_EMBEDDING = "candidate_embedding"
EVALUATE_EXAMPLES = "evaluate_examples"  # for the Evaluator, not for clients

RECENT_TRACKS_WIDTH = features.HISTORY_LENGTH
PAD = features.PAD_TOKEN

# The `recommend` inputs beyond `serving_default`'s, and the values that leave a row's answer
# as `serving_default` would give it (an exclusion row of padding only counts as neutral).
CONTROL_INPUTS = ("exclude_track_ids", "diversity", "explore", "seed", "released_within_days",
                  "probe")
NEUTRAL_CONTROLS = {"exclude_track_ids": PAD, "diversity": 0.0, "explore": 0.0, "seed": 0,
                    "released_within_days": 0, "probe": 0}

Rows = Optional[Sequence[Optional[Sequence[str]]]]


def _strings(values: Sequence[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [value.encode() if isinstance(value, str) else bytes(value) for value in values]
    return array


def _per_row(value, rows: int, name: str) -> list:
    if isinstance(value, (str, bytes, int, float, np.integer, np.floating)) or value is None:
        return [value] * rows
    value = list(value)
    if len(value) != rows:
        raise ValueError(f"{name}: expected {rows} values, got {len(value)}")
    return value


def _padded_matrix(rows: Sequence[Sequence[str]], width: int) -> np.ndarray:
    matrix = np.empty((len(rows), width), dtype=object)
    for index, row in enumerate(rows):
        matrix[index] = _strings(list(row) + [PAD] * (width - len(row)))
    return matrix


def recent_tracks_matrix(recent_tracks: Sequence[Optional[Sequence[str]]]) -> np.ndarray:
    """[B, max(RECENT_TRACKS_WIDTH, longest)] object array of bytes, "" padded."""
    rows = [list(row or ()) for row in recent_tracks]
    return _padded_matrix(rows, max([RECENT_TRACKS_WIDTH] + [len(row) for row in rows]))


def exclusions_matrix(exclude: Sequence[Optional[Sequence[str]]]) -> np.ndarray:
    """[B, m] object array of bytes, "" padded; m: the longest row rounded up to a power of
    two, at least 1 (one column of "" excludes nothing)."""
    rows = []
    for index, row in enumerate(exclude):
        if isinstance(row, (str, bytes)):
            raise ValueError(f"exclude: row {index} is the string {row!r}; give each user a "
                             "list of track ids")
        rows.append([] if row is None else list(row))
    longest = max([1] + [len(row) for row in rows])
    return _padded_matrix(rows, 1 << (longest - 1).bit_length())


def _rows_of(value: Rows, rows: int, name: str) -> list:
    values = [None] * rows if value is None else list(value)
    if len(values) != rows:
        raise ValueError(f"{name}: expected {rows} rows, got {len(values)}")
    return values


def recommend_inputs(user_ids: Sequence[str],
                     recent_tracks: Rows = None,
                     k: Union[int, Sequence[int]] = 10,
                     platform: Union[str, Sequence[str]] = "",
                     timestamp: Union[None, int, Sequence[int]] = None
                     ) -> Dict[str, np.ndarray]:
    """`serving_default` inputs for a batch of users (one row per user)."""
    rows = len(user_ids)
    if rows == 0:
        raise ValueError("need at least one user")
    recent = _rows_of(recent_tracks, rows, "recent_tracks")
    timestamps = [0 if t is None else int(t) for t in _per_row(timestamp, rows, "timestamp")]
    return {
        "user_id": _strings(list(user_ids)),
        "recent_track_ids": recent_tracks_matrix(recent),
        "timestamp": np.asarray(timestamps, dtype=np.int64),
        "platform": _strings(_per_row(platform, rows, "platform")),
        "k": np.asarray(_per_row(k, rows, "k"), dtype=np.int32),
    }


def _unit_interval(value, rows: int, name: str) -> np.ndarray:
    values = _per_row(value, rows, name)
    for index, item in enumerate(values):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, float, np.integer,
                                                                       np.floating)):
            raise ValueError(f"{name}: row {index} is {item!r}, not a number in [0, 1]")
        if math.isnan(item) or not 0.0 <= item <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {item!r} (row {index})")
    return np.asarray(values, dtype=np.float32)


def _integers(value, rows: int, name: str, dtype, minimum: Optional[int] = None) -> np.ndarray:
    values = _per_row(value, rows, name)
    limits = np.iinfo(dtype)
    low = limits.min if minimum is None else minimum
    for index, item in enumerate(values):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ValueError(f"{name}: row {index} is {item!r}, not an integer")
        if not low <= item <= limits.max:
            raise ValueError(f"{name} must be in [{low}, {limits.max}], got {item} "
                             f"(row {index})")
    return np.asarray(values, dtype=dtype)


def recommend_controls_inputs(user_ids: Sequence[str],
                              recent_tracks: Rows = None,
                              k: Union[int, Sequence[int]] = 10,
                              platform: Union[str, Sequence[str]] = "",
                              timestamp: Union[None, int, Sequence[int]] = None,
                              exclude: Rows = None,
                              diversity: Union[float, Sequence[float]] = 0.0,
                              explore: Union[float, Sequence[float]] = 0.0,
                              seed: Union[int, Sequence[int]] = 0,
                              released_within_days: Union[int, Sequence[int]] = 0,
                              probe: Union[int, Sequence[int]] = 0) -> Dict[str, np.ndarray]:
    """`recommend` inputs for a batch of users: `recommend_inputs`' plus the controls (see the
    module docstring), each a value for every row or one value per row; `exclude` is one list
    of track ids per row (None: none). ValueError names a control out of its range."""
    inputs = recommend_inputs(user_ids, recent_tracks, k, platform, timestamp)
    rows = len(user_ids)
    inputs.update({
        "exclude_track_ids": exclusions_matrix(_rows_of(exclude, rows, "exclude")),
        "diversity": _unit_interval(diversity, rows, "diversity"),
        "explore": _unit_interval(explore, rows, "explore"),
        "seed": _integers(seed, rows, "seed", np.int64),
        # > 0 only the model can refuse (it knows whether it has release dates); < 0 never
        # means anything.
        "released_within_days": _integers(released_within_days, rows, "released_within_days",
                                          np.int32, minimum=0),
        "probe": _integers(probe, rows, "probe", np.int32, minimum=0),
    })
    return inputs


def non_neutral_controls(inputs: Mapping[str, np.ndarray]) -> List[str]:
    """The names of the `recommend` controls in `inputs` that some row sets away from
    `NEUTRAL_CONTROLS` (what a model without `recommend` cannot honour)."""
    names = []
    for name in CONTROL_INPUTS:
        if name not in inputs:
            continue
        neutral = NEUTRAL_CONTROLS[name]
        values = np.asarray(inputs[name])
        if isinstance(neutral, str):
            changed = any(value not in (neutral, neutral.encode()) for value in values.flat)
        else:
            changed = bool(np.any(values != neutral))
        if changed:
            names.append(name)
    return names


# What a client or `crossfade recommend --blend` asks for without a --strategy: on Last.fm
# friend pairs it keeps the most of each member's own Recall@20 (README, Blend benchmark).
DEFAULT_BLEND_STRATEGY = "fair-interleave"


def _strategy_codes(strategy, rows: int) -> np.ndarray:
    codes = []
    for index, value in enumerate(_per_row(strategy, rows, "strategy")):
        if isinstance(value, str) and value in BLEND_STRATEGIES:
            codes.append(BLEND_STRATEGIES[value])
        elif isinstance(value, (int, np.integer)) and value in BLEND_STRATEGIES.values():
            codes.append(int(value))
        else:
            raise ValueError(f"strategy: row {index} is {value!r}, not one of "
                             f"{sorted(BLEND_STRATEGIES)}")
    return np.asarray(codes, dtype=np.int32)


def blend_inputs(groups: Sequence[Sequence[str]],
                 recent_tracks: Optional[Sequence[Optional[Sequence[Optional[Sequence[str]]]]]]
                 = None,
                 k: Union[int, Sequence[int]] = 20,
                 strategy: Union[str, int, Sequence[Union[str, int]]] = DEFAULT_BLEND_STRATEGY,
                 platform: Union[str, Sequence[str]] = "",
                 timestamp: Union[None, int, Sequence[int]] = None,
                 exclude: Rows = None) -> Dict[str, np.ndarray]:
    """`blend` inputs: one row per group of 1..`MAX_MEMBERS` user ids; `recent_tracks` holds,
    per group, one list (or None) per member. Groups are padded with "" members to the
    largest; ValueError names a group that is empty or too large, or an unknown strategy."""
    rows = len(groups)
    if rows == 0:
        raise ValueError("need at least one group")
    for index, group in enumerate(groups):
        if isinstance(group, (str, bytes)) or not 1 <= len(group) <= MAX_MEMBERS:
            raise ValueError(f"group {index}: a blend has 1 to {MAX_MEMBERS} members, got "
                             f"{group!r}")
    members = max(len(group) for group in groups)
    recent = _rows_of(recent_tracks, rows, "recent_tracks")
    histories = []
    for index, (group, lists) in enumerate(zip(groups, recent, strict=True)):
        lists = [None] * len(group) if lists is None else list(lists)
        if len(lists) != len(group):
            raise ValueError(f"recent_tracks: group {index} has {len(group)} members but "
                             f"{len(lists)} lists")
        histories.append([list(row or ()) for row in lists] + [[]] * (members - len(group)))
    width = max([RECENT_TRACKS_WIDTH] + [len(row) for group in histories for row in group])
    timestamps = [0 if t is None else int(t) for t in _per_row(timestamp, rows, "timestamp")]
    return {
        "user_ids": _padded_matrix([list(group) for group in groups], members),
        "recent_track_ids": np.stack([_padded_matrix(group, width) for group in histories]),
        "timestamp": np.asarray(timestamps, dtype=np.int64),
        "platform": _strings(_per_row(platform, rows, "platform")),
        "k": np.asarray(_per_row(k, rows, "k"), dtype=np.int32),
        "strategy": _strategy_codes(strategy, rows),
        "exclude_track_ids": exclusions_matrix(_rows_of(exclude, rows, "exclude")),
    }


def similar_tracks_inputs(track_ids: Sequence[str],
                          k: Union[int, Sequence[int]] = 10) -> Dict[str, np.ndarray]:
    """`similar_tracks` inputs for a batch of seed tracks."""
    if not track_ids:
        raise ValueError("need at least one track id")
    return {"track_id": _strings(list(track_ids)),
            "k": np.asarray(_per_row(k, len(track_ids), "k"), dtype=np.int32)}
