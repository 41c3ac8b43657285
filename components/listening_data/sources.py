"""Readers for the listening-log folders crossfade accepts, with row-level validation.

Two layouts are recognised (`detect_layout`; their file names and columns are in `layout`):

* ``simulator`` (also what `crossfade generate` writes): ``catalogue.csv`` plus one folder per
  day, ``plays/span-NNNN/*.csv``, in the field names of Spotify's "Extended streaming history"
  export (``ts``, ``username``, ``platform``, ``ms_played``, ``spotify_track_uri``, ...).
* ``generic``: ``interactions.csv`` with header ``user_id,item_id[,timestamp][,weight]``
  (timestamp in Unix seconds; data without it, such as Last.fm HetRec's play counts, has no
  order and is split at random) and optionally ``items.csv`` (``item_id`` plus any metadata
  columns; ``artist``, ``genres``, ``tags`` and the audio descriptor names are used). The
  importers (components/listening_data/importers.py) write these layouts from real exports.

Files are parsed column-wise (pandas' C parser, numpy checks) into `Plays` and `Catalogue`,
the same canonical columns for every layout, so everything downstream is layout-agnostic and
fast. Files are opened through `tf.io.gfile`, so the folder may be on any filesystem TensorFlow
reads (local, gs://, hdfs://). Every problem is raised as `InputDataError` naming the file, the
data row (1 = the first row after the header) and the field.
"""
import dataclasses
import io
import os
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from crossfade.components import features
from crossfade.components.listening_data.layout import (
    CATALOGUE_FILE,
    GENERIC,
    INTERACTIONS_FILE,
    ITEMS_FILE,
    LIST_SEPARATOR,
    PLAYS_DIR,
    PLAYS_PATTERN,
    SIMULATOR,
    SPAN_PREFIX,
)

SPOTIFY_REQUIRED_COLUMNS = ("ts", "username", "ms_played", "spotify_track_uri")
GENERIC_REQUIRED_COLUMNS = ("user_id", "item_id")
GENERIC_TIMESTAMP = "timestamp"
_TRUE = ("true", "1")
_FALSE = ("false", "0", "", "null", "none")

# Audio descriptor columns as named in catalogue.csv / items.csv.
AUDIO_COLUMNS = tuple(name[len("track_"):] for name in features.AUDIO_DESCRIPTORS)


class InputDataError(ValueError):
    """Input data that crossfade cannot use, located by file, data row and field."""

    def __init__(self, path: str, message: str, row: Optional[int] = None,
                 field: Optional[str] = None):
        location = path
        if row is not None:
            location += f", row {row}"
        if field is not None:
            location += f", field '{field}'"
        super().__init__(f"{location}: {message}")
        self.path = path
        self.row = row
        self.field = field

    def __reduce__(self):  # keep the location when Beam pickles the error across workers
        return (InputDataError, (self.path, str(self).split(": ", 1)[-1], self.row, self.field))


@dataclasses.dataclass
class Plays:
    """Play events as parallel columns (one entry per play)."""

    user_id: np.ndarray  # object (str)
    track_id: np.ndarray  # object (str)
    ts: np.ndarray  # int64 Unix seconds
    platform: np.ndarray  # object (str)
    country: np.ndarray  # object (str)
    ms_played: np.ndarray  # int64
    skipped: np.ndarray  # int64 0/1
    reason_end: np.ndarray  # object (str)
    weight: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: np.ndarray) -> "Plays":
        return Plays(**{field.name: getattr(self, field.name)[rows]
                        for field in dataclasses.fields(self)})

    @staticmethod
    def concat(parts: "list[Plays]") -> "Plays":
        return Plays(**{field.name: np.concatenate([getattr(p, field.name) for p in parts])
                        for field in dataclasses.fields(Plays)})


@dataclasses.dataclass
class Catalogue:
    """Catalogue tracks as columns; list features padded with PAD_TOKEN to fixed widths."""

    track_id: np.ndarray  # object (str), unique
    artist: np.ndarray  # object (str)
    genres: np.ndarray  # object [n, MAX_GENRES]
    tags: np.ndarray  # object [n, MAX_TAGS]
    audio: np.ndarray  # float32 [n, len(AUDIO_COLUMNS)]

    def __len__(self) -> int:
        return len(self.track_id)

    def take(self, rows: np.ndarray) -> "Catalogue":
        return Catalogue(**{field.name: getattr(self, field.name)[rows]
                            for field in dataclasses.fields(self)})


def detect_layout(data_dir: str) -> str:
    """Returns SIMULATOR or GENERIC for `data_dir`, or raises InputDataError."""
    if not tf.io.gfile.isdir(data_dir):
        raise InputDataError(data_dir, "data folder does not exist")
    if tf.io.gfile.isdir(os.path.join(data_dir, PLAYS_DIR)):
        if not tf.io.gfile.exists(os.path.join(data_dir, CATALOGUE_FILE)):
            raise InputDataError(os.path.join(data_dir, CATALOGUE_FILE),
                                 f"missing: a {PLAYS_DIR}/ folder needs its {CATALOGUE_FILE}")
        return SIMULATOR
    if tf.io.gfile.exists(os.path.join(data_dir, INTERACTIONS_FILE)):
        return GENERIC
    raise InputDataError(
        data_dir, f"no listening data: expected {PLAYS_DIR}/{SPAN_PREFIX}NNNN/*.csv with "
        f"{CATALOGUE_FILE}, or {INTERACTIONS_FILE} [+ {ITEMS_FILE}]")


def has_timestamps(data_dir: str, layout: str) -> bool:
    """Whether the folder's plays carry timestamps (a generic file may leave them out)."""
    if layout == SIMULATOR:
        return True
    path = os.path.join(data_dir, INTERACTIONS_FILE)
    with tf.io.gfile.GFile(path, "r") as handle:
        header = handle.readline()
    return GENERIC_TIMESTAMP in [name.strip() for name in header.split(",")]


def plays_pattern(layout: str) -> str:
    """The ExampleGen input pattern (relative to the data folder) for a layout's plays."""
    return PLAYS_PATTERN if layout == SIMULATOR else INTERACTIONS_FILE


def catalogue_pattern(data_dir: str, layout: str) -> str:
    """The ExampleGen input pattern for a folder's catalogue.

    A generic folder without items.csv has no catalogue file: its catalogue is every item in
    interactions.csv, without content features.
    """
    if layout == SIMULATOR:
        return CATALOGUE_FILE
    if tf.io.gfile.exists(os.path.join(data_dir, ITEMS_FILE)):
        return ITEMS_FILE
    return INTERACTIONS_FILE


def _read_table(path: str, required) -> pd.DataFrame:
    """All columns as strings ("" for empty); checks the header and that there are rows."""
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            content = io.BytesIO(handle.read())  # pandas cannot read from a GFile directly
        table = pd.read_csv(content, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise InputDataError(path, "file is empty (no header row)") from None
    except pd.errors.ParserError as error:
        raise InputDataError(path, f"malformed CSV: {error}") from None
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}; header is "
                             f"{list(table.columns)}", field=missing[0])
    if table.empty:
        raise InputDataError(path, "no rows: the file has a header only")
    return table


def _fail_at(path: str, bad: np.ndarray, field: str, values, message: str) -> None:
    """Raises for the first True in `bad`, quoting the offending value."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputDataError(path, f"{message}: {values[row]!r}", row=row + 1, field=field)


def _text(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), "", dtype=object)
    return table[name].str.strip().to_numpy(dtype=object)


def _required_text(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    values = _text(table, name)
    _fail_at(path, values == "", name, values, "empty value")
    return values


def _integers(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    raw = table[name].to_numpy(dtype=object)
    numbers = pd.to_numeric(table[name].str.strip(), errors="coerce").to_numpy(dtype=float)
    _fail_at(path, ~np.isfinite(numbers), name, raw, "not a number")
    _fail_at(path, numbers != np.floor(numbers), name, raw, "not a whole number")
    _fail_at(path, numbers < 0, name, raw, "negative")
    return numbers.astype(np.int64)


def _floats(table: pd.DataFrame, path: str, name: str, default: float) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), default, dtype=np.float32)
    text = table[name].str.strip()
    raw = table[name].to_numpy(dtype=object)
    numbers = pd.to_numeric(text.where(text != "", str(default)),
                            errors="coerce").to_numpy(dtype=float)
    _fail_at(path, ~np.isfinite(numbers), name, raw, "not a finite number")
    return numbers.astype(np.float32)


def _booleans(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.zeros(len(table), dtype=np.int64)
    values = table[name].str.strip().str.lower()
    is_true = values.isin(_TRUE).to_numpy()
    _fail_at(path, ~(is_true | values.isin(_FALSE).to_numpy()), name,
             table[name].to_numpy(dtype=object), "not a boolean")
    return is_true.astype(np.int64)


def _iso_seconds(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    raw = table[name].to_numpy(dtype=object)
    moments = pd.to_datetime(table[name].str.strip(), errors="coerce", utc=True)
    _fail_at(path, moments.isna().to_numpy(), name, raw, "not an ISO-8601 timestamp")
    return (moments.astype("int64") // 1_000_000_000).to_numpy(dtype=np.int64)


def _check_known(path: str, track_ids: np.ndarray, known: Optional[np.ndarray],
                 field: str) -> None:
    if known is not None:
        # A hash lookup: np.isin on object arrays sorts and is orders of magnitude slower.
        unknown = pd.Index(known).get_indexer(track_ids) < 0
        _fail_at(path, unknown, field, track_ids, "track is not in the catalogue")


def read_spotify_plays(path: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Plays from one CSV in Spotify's Extended streaming history field names.

    Rows without a track URI (podcast episodes, audiobooks) are not music plays and are
    dropped. With `known_tracks`, a play of any other track is an error.
    """
    table = _read_table(path, SPOTIFY_REQUIRED_COLUMNS)
    track_id = _text(table, "spotify_track_uri")
    music = track_id != ""
    table, track_id = table[music].reset_index(drop=True), track_id[music]
    if table.empty:
        raise InputDataError(path, "no music plays (no row has a spotify_track_uri)")
    _check_known(path, track_id, known_tracks, "spotify_track_uri")
    return Plays(
        user_id=_required_text(table, path, "username"),
        track_id=track_id,
        ts=_iso_seconds(table, path, "ts"),
        platform=np.char.lower(_text(table, "platform").astype(str)).astype(object),
        country=np.char.upper(_text(table, "conn_country").astype(str)).astype(object),
        ms_played=_integers(table, path, "ms_played"),
        skipped=_booleans(table, path, "skipped"),
        reason_end=_text(table, "reason_end"),
        weight=np.ones(len(table), dtype=np.float32),
    )


def read_generic_interactions(path: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Plays from a generic `interactions.csv` (user_id,item_id[,timestamp][,weight]).

    Without a timestamp column every play gets timestamp 0: the data has no order.
    """
    table = _read_table(path, GENERIC_REQUIRED_COLUMNS)
    track_id = _required_text(table, path, "item_id")
    _check_known(path, track_id, known_tracks, "item_id")
    weight = _floats(table, path, "weight", 1.0)
    _fail_at(path, weight <= 0, "weight", weight, "weight must be positive")
    empty = np.full(len(table), "", dtype=object)
    return Plays(
        user_id=_required_text(table, path, "user_id"),
        track_id=track_id,
        ts=(_integers(table, path, GENERIC_TIMESTAMP) if GENERIC_TIMESTAMP in table.columns
            else np.zeros(len(table), dtype=np.int64)),
        platform=empty, country=empty,
        ms_played=np.zeros(len(table), dtype=np.int64),
        skipped=np.zeros(len(table), dtype=np.int64),
        reason_end=empty,
        weight=weight,
    )


def read_plays(path: str, layout: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Plays from one plays file of the given layout (see `read_spotify_plays`)."""
    if layout == SIMULATOR:
        return read_spotify_plays(path, known_tracks)
    return read_generic_interactions(path, known_tracks)


def _padded_lists(texts: np.ndarray, width: int) -> np.ndarray:
    result = np.full((len(texts), width), features.PAD_TOKEN, dtype=object)
    for row, text in enumerate(texts):
        items = [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()][:width]
        result[row, :len(items)] = items
    return result


def read_catalogue(path: str) -> Catalogue:
    """Tracks from `catalogue.csv` (id column `track_id`) or `items.csv` (`item_id`)."""
    id_column = "item_id" if os.path.basename(path) == ITEMS_FILE else "track_id"
    table = _read_table(path, (id_column,))
    track_id = _required_text(table, path, id_column)
    _fail_at(path, pd.Series(track_id).duplicated().to_numpy(), id_column, track_id,
             "duplicate track id")
    genres = _text(table, "genres" if "genres" in table.columns else "genre")
    return Catalogue(
        track_id=track_id,
        artist=_text(table, "artist"),
        genres=_padded_lists(genres, features.MAX_GENRES),
        tags=_padded_lists(_text(table, "tags"), features.MAX_TAGS),
        audio=np.stack([_floats(table, path, column, 0.0) for column in AUDIO_COLUMNS],
                       axis=1),
    )


def catalogue_from_track_ids(track_ids: np.ndarray) -> Catalogue:
    """A content-free catalogue of the given tracks, for generic data without items.csv."""
    unique = np.array(sorted(set(track_ids)), dtype=object)
    size = len(unique)
    return Catalogue(
        track_id=unique,
        artist=np.full(size, "", dtype=object),
        genres=np.full((size, features.MAX_GENRES), features.PAD_TOKEN, dtype=object),
        tags=np.full((size, features.MAX_TAGS), features.PAD_TOKEN, dtype=object),
        audio=np.zeros((size, len(AUDIO_COLUMNS)), dtype=np.float32),
    )


def read_catalogue_source(path: str) -> Catalogue:
    """The catalogue at whatever `catalogue_pattern` matched: a catalogue, or interactions."""
    if os.path.basename(path) == INTERACTIONS_FILE:
        return catalogue_from_track_ids(read_generic_interactions(path).track_id)
    return read_catalogue(path)
