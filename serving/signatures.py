"""crossfade's serving signatures: their names, and request tensors from plain values.

The names are the contract between the export (`crossfade.components.trainer.export`, which
documents every signature's inputs and outputs) and every client. The request builders are used
by the clients and by the warmup-request writer, so what warms a model up is exactly what
clients send (a test checks them against the exported input signature):

* ``serving_default``: ``user_id`` [B] string, ``recent_track_ids`` [B, n] string (most
  recent first), ``timestamp`` [B] int64 (<= 0: the server's now), ``platform`` [B] string,
  ``k`` [B] int32 -> ``track_ids`` [B, K] string, ``scores`` [B, K] float32.
* ``similar_tracks``: ``track_id`` [B] string, ``k`` [B] int32 -> ``track_ids``, ``scores``,
  ``found`` [B] bool.

`recent_track_ids` rows are padded with "" to one width, at least `RECENT_TRACKS_WIDTH` (the
model's history length): the REST row format and TF Serving's batching both need a
rectangle, and a fixed width lets requests from different users batch together.
"""
from typing import Dict, Optional, Sequence, Union

import numpy as np

from crossfade.components import features

# TF Serving's default signature key (tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY).
SERVING_DEFAULT = "serving_default"
SIMILAR_TRACKS = "similar_tracks"
QUERY_EMBEDDING = "query_embedding"
CANDIDATE_EMBEDDING = "candidate_embedding"
EVALUATE_EXAMPLES = "evaluate_examples"  # for the Evaluator, not for clients

RECENT_TRACKS_WIDTH = features.HISTORY_LENGTH
PAD = features.PAD_TOKEN


def _strings(values: Sequence[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [value.encode() if isinstance(value, str) else bytes(value) for value in values]
    return array


def _per_row(value, rows: int, name: str) -> list:
    if isinstance(value, (str, bytes, int, np.integer)) or value is None:
        return [value] * rows
    value = list(value)
    if len(value) != rows:
        raise ValueError(f"{name}: expected {rows} values, got {len(value)}")
    return value


def recent_tracks_matrix(recent_tracks: Sequence[Optional[Sequence[str]]]) -> np.ndarray:
    """[B, max(RECENT_TRACKS_WIDTH, longest)] object array of bytes, "" padded."""
    rows = [list(row or ()) for row in recent_tracks]
    width = max([RECENT_TRACKS_WIDTH] + [len(row) for row in rows])
    matrix = np.empty((len(rows), width), dtype=object)
    for index, row in enumerate(rows):
        matrix[index] = _strings(row + [PAD] * (width - len(row)))
    return matrix


def recommend_inputs(user_ids: Sequence[str],
                     recent_tracks: Optional[Sequence[Optional[Sequence[str]]]] = None,
                     k: Union[int, Sequence[int]] = 10,
                     platform: Union[str, Sequence[str]] = "",
                     timestamp: Union[None, int, Sequence[int]] = None
                     ) -> Dict[str, np.ndarray]:
    """`serving_default` inputs for a batch of users (one row per user)."""
    rows = len(user_ids)
    if rows == 0:
        raise ValueError("need at least one user")
    recent = [None] * rows if recent_tracks is None else list(recent_tracks)
    if len(recent) != rows:
        raise ValueError(f"recent_tracks: expected {rows} rows, got {len(recent)}")
    timestamps = [0 if t is None else int(t) for t in _per_row(timestamp, rows, "timestamp")]
    return {
        "user_id": _strings(list(user_ids)),
        "recent_track_ids": recent_tracks_matrix(recent),
        "timestamp": np.asarray(timestamps, dtype=np.int64),
        "platform": _strings(_per_row(platform, rows, "platform")),
        "k": np.asarray(_per_row(k, rows, "k"), dtype=np.int32),
    }


def similar_tracks_inputs(track_ids: Sequence[str],
                          k: Union[int, Sequence[int]] = 10) -> Dict[str, np.ndarray]:
    """`similar_tracks` inputs for a batch of seed tracks."""
    if not track_ids:
        raise ValueError("need at least one track id")
    return {"track_id": _strings(list(track_ids)),
            "k": np.asarray(_per_row(k, len(track_ids), "k"), dtype=np.int32)}
