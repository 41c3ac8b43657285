"""Track id -> catalogue row: a hash table the SavedModel initialises from an asset file.

A `tf.lookup.StaticHashTable` initialised from a tensor of ids puts every id into the graph
(saved_model.pb) as a constant: about 40 bytes per Spotify-style URI, 0.4 GB at 10M tracks,
parsed as one protocol buffer on every load and close to its 2 GB hard limit at 50M. Here,
as tf.Transform does for its vocabularies, the ids travel as an asset file
(``assets/catalogue_track_ids.txt``, one id per line, line number = catalogue row) that the
table's initializer reads when TF Serving (or `tf.saved_model.load`) loads the model: the
graph holds only the file name, whatever the catalogue's size.

Contract: ids are str or bytes (else TypeError), non-empty, unique, and hold no line break
("\\n" or "\\r"); anything else is a ValueError naming the row, raised before anything is
written. Unknown ids look up as -1.
"""
import os
import tempfile
from typing import Sequence, Union

import numpy as np
import pandas as pd
import tensorflow as tf

ASSET_NAME = "catalogue_track_ids.txt"
NOT_FOUND = -1


def _encoded(ids: Sequence[Union[str, bytes]]) -> list:
    """`ids` as UTF-8 bytes, checked against the contract (errors name the row)."""
    encoded = []
    for row, track_id in enumerate(ids):
        if not isinstance(track_id, (str, bytes)):
            raise TypeError(f"catalogue track id at row {row} is a {type(track_id).__name__}"
                            f" ({track_id!r}), not str or bytes")
        encoded.append(track_id.encode("utf-8") if isinstance(track_id, str) else track_id)
    for row, track_id in enumerate(encoded):
        if not track_id or b"\n" in track_id or b"\r" in track_id:
            raise ValueError(f"catalogue track id at row {row} ({track_id!r}) must be "
                             "non-empty and hold no line break")
    duplicated = pd.Index(encoded).duplicated()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise ValueError(f"catalogue track id at row {row} ({encoded[row]!r}) repeats an "
                         "earlier row's")
    return encoded


class TrackRows(tf.Module):
    """Looks track ids up: `rows = TrackRows(ids)(track_ids)`, any shape in, int32 rows out
    (`NOT_FOUND` for an id outside the catalogue).

    The asset file is written to a temporary folder that lives as long as this object (the
    table reads it once, here, and `tf.saved_model.save` copies it into the SavedModel's
    assets); a loaded model reads its own copy.
    """

    def __init__(self, ids: Sequence[Union[str, bytes]]):
        super().__init__()
        encoded = _encoded(ids)
        self._folder = tempfile.TemporaryDirectory(prefix="crossfade-track-rows-")
        path = os.path.join(self._folder.name, ASSET_NAME)
        with open(path, "wb") as file:
            file.write(b"\n".join(encoded) + b"\n")
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER, vocab_size=len(encoded)),
            default_value=NOT_FOUND)

    def __call__(self, track_ids: tf.Tensor) -> tf.Tensor:
        """int32 catalogue rows of string `track_ids` (same shape)."""
        return tf.cast(self.table.lookup(track_ids), tf.int32)
