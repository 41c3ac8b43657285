"""Readers for the listening-log folders crossfade accepts, with row-level validation.

Two layouts are recognised (`detect_layout`; their file names and columns are in `layout`):

* ``simulator`` (also what `crossfade generate` writes): ``catalogue.csv`` plus one folder per
  day, ``plays/span-NNNN/*.csv``, in the field names of Spotify's "Extended streaming history"
  export (``ts``, ``username``, ``platform``, ``ms_played``, ``spotify_track_uri``, ...).
* ``generic``: ``interactions.csv`` with header ``user_id,item_id[,timestamp][,weight]``
  (timestamp in Unix seconds; data without it, such as Last.fm HetRec's play counts, has no
  order and is split at random) and optionally ``items.csv`` (``item_id`` plus any metadata
  columns; ``artist``, ``genres``, ``tags``, ``release_date`` and the audio descriptor names
  are used). The
  importers (components/listening_data/importers.py) write these layouts from real exports.

Files are parsed column-wise (pandas' C parser, numpy checks) into `Plays` and `Catalogue`,
the same canonical columns for every layout, so everything downstream is layout-agnostic and
fast. Files are opened through `tf.io.gfile`, so the folder may be on any filesystem TensorFlow
reads (local, gs://, hdfs://). Every problem is raised as `InputDataError` naming the file, the
data row (1 = the first row after the header) and the field: bytes that are not UTF-8, a row
with fewer fields than the header (a truncated copy), control characters (such as a newline)
in an id, which TFT's newline-delimited vocabulary files cannot hold, and timestamps outside
the plausible range of `play_checks`. Exact duplicate rows of timestamped plays are copies,
dropped and counted (`read_plays_counted`); without timestamps repeated rows are repeated
plays and all are kept.

A simulator-layout folder may also hold ``likes.csv`` (`read_likes`): the tracks listeners
saved, with or without the time they saved them.
"""
import csv
import dataclasses
import io
import json
import os
import time
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from crossfade.components import features
from crossfade.components.listening_data.layout import (
    CATALOGUE_FILE,
    GENERIC,
    INTERACTIONS_FILE,
    ITEMS_FILE,
    LIKES_FILE,
    LIST_SEPARATOR,
    PLAYS_DIR,
    PLAYS_PATTERN,
    SIMULATOR,
    SPAN_PREFIX,
)
from crossfade.components.listening_data.play_checks import (
    CLOCK_TOLERANCE_SECONDS,
    DUPLICATE_PLAYS,
    EARLIEST_PLAY_TS,
    OUT_OF_RANGE_PLAYS,
    REJECT,
    check_timestamp_policy,
)

SPOTIFY_REQUIRED_COLUMNS = ("ts", "username", "ms_played", "spotify_track_uri")
GENERIC_REQUIRED_COLUMNS = ("user_id", "item_id")
GENERIC_TIMESTAMP = "timestamp"
_TRUE = ("true", "1")
_FALSE = ("false", "0", "", "null", "none")
# C0 and C1 control characters, DEL and the Unicode line/paragraph separators.
_CONTROL_CHARACTERS = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"
_UNDECODED = "[\udc80-\udcff]"  # bytes that are not UTF-8, as read with surrogateescape

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
    title: np.ndarray  # object (str); "" where the file has none (display only)
    # int64 days since 1970-01-01 UTC; features.NO_RELEASE_DAY where the file has none.
    release_day: np.ndarray

    def __len__(self) -> int:
        return len(self.track_id)

    def take(self, rows: np.ndarray) -> "Catalogue":
        return Catalogue(**{field.name: getattr(self, field.name)[rows]
                            for field in dataclasses.fields(self)})


NO_TIME = -1  # `Likes.ts` of a like saved at an unknown time (Spotify's YourLibrary.json)


@dataclasses.dataclass
class Likes:
    """Saved tracks ("likes") as columns, one entry per distinct (user, track)."""

    user_id: np.ndarray  # object (str)
    track_id: np.ndarray  # object (str)
    ts: np.ndarray  # int64 Unix seconds when saved, NO_TIME when unknown

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: np.ndarray) -> "Likes":
        return Likes(self.user_id[rows], self.track_id[rows], self.ts[rows])


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
    with tf.io.gfile.GFile(path, "rb") as handle:
        header = handle.readline()
    try:
        names = header.decode("utf-8-sig").split(",")
    except UnicodeDecodeError as error:
        raise InputDataError(path, f"not UTF-8 text in the header row (byte "
                             f"0x{header[error.start]:02x}); save the file as UTF-8") from None
    return GENERIC_TIMESTAMP in [name.strip() for name in names]


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


def _parse_csv(content: bytes, **options) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, na_filter=False,
                       **options)


def _not_utf8(path: str, content: bytes, error: UnicodeDecodeError) -> InputDataError:
    """The located error for the first cell (or header name) holding bytes that are not UTF-8."""
    message = f"not UTF-8 text (byte 0x{content[error.start]:02x}); save the file as UTF-8"
    table = _parse_csv(content, encoding_errors="surrogateescape")
    for name in table.columns:
        if pd.Series([name]).str.contains(_UNDECODED).any():
            return InputDataError(path, f"{message}: header {_readable(name)!r}", field=name)
    bad = np.stack([table[name].str.contains(_UNDECODED).to_numpy() for name in table.columns],
                   axis=1)
    if not bad.any():
        return InputDataError(path, f"{message} at byte offset {error.start}")
    row, column = (int(i[0]) for i in np.nonzero(bad))
    name = table.columns[column]
    return InputDataError(path, f"{message}: {_readable(table[name][row])!r}", row=row + 1,
                          field=name)


def _readable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_complete_rows(path: str, content: bytes, table: pd.DataFrame) -> None:
    """Raises for the first row with fewer fields than the header (pandas pads those with "").

    Only a row whose last field is empty can be short, so the file is re-scanned only then.
    """
    if not (table[table.columns[-1]] == "").any():
        return
    width = len(table.columns)
    records = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    next(records, None)  # the header
    widths = [len(record) for record in records if record]
    short = np.flatnonzero(np.array(widths) < width)
    if len(short):
        row = int(short[0])
        raise InputDataError(path, f"the row has fewer fields than the header ({widths[row]} "
                             f"of {width}): a truncated copy?", row=row + 1,
                             field=table.columns[widths[row]])


def _read_table(path: str, required, allow_empty: bool = False) -> pd.DataFrame:
    """All columns as strings ("" for empty); checks the encoding, the header, that there are
    rows (unless `allow_empty`) and that none is short. The index is the data row - 1, kept
    through any filtering."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        content = handle.read()  # pandas cannot read from a GFile directly
    try:
        table = _parse_csv(content)
    except UnicodeDecodeError as error:
        raise _not_utf8(path, content, error) from None
    except pd.errors.EmptyDataError:
        raise InputDataError(path, "file is empty (no header row)") from None
    except pd.errors.ParserError as error:
        raise InputDataError(path, f"malformed CSV: {error}") from None
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}; header is "
                             f"{list(table.columns)}", field=missing[0])
    if table.empty and not allow_empty:
        raise InputDataError(path, "no rows: the file has a header only")
    if table.empty:
        return table
    _check_complete_rows(path, content, table)
    return table


def _fail_at(path: str, bad: np.ndarray, field: str, values, message: str,
             rows: Optional[pd.Index] = None) -> None:
    """Raises for the first True in `bad`, quoting the offending value; `rows` (a table's
    index) maps positions to data rows - 1 when rows were filtered out before."""
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        row = position if rows is None else int(rows[position])
        raise InputDataError(path, f"{message}: {values[position]!r}", row=row + 1,
                             field=field)


def _text(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), "", dtype=object)
    return table[name].str.strip().to_numpy(dtype=object)


def _id_text(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    """`_text` of an id column (or list of ids); a control character in it is an error."""
    if name in table.columns:
        bad = table[name].str.contains(_CONTROL_CHARACTERS).to_numpy()
        _fail_at(path, bad, name, table[name].to_numpy(dtype=object),
                 "control character (such as a newline) in an id", table.index)
    return _text(table, name)


def _required_text(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    values = _id_text(table, path, name)
    _fail_at(path, values == "", name, values, "empty value", table.index)
    return values


def _integers(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    raw = table[name].to_numpy(dtype=object)
    numbers = pd.to_numeric(table[name].str.strip(), errors="coerce").to_numpy(dtype=float)
    _fail_at(path, ~np.isfinite(numbers), name, raw, "not a number", table.index)
    _fail_at(path, numbers != np.floor(numbers), name, raw, "not a whole number", table.index)
    _fail_at(path, numbers < 0, name, raw, "negative", table.index)
    return numbers.astype(np.int64)


def _floats(table: pd.DataFrame, path: str, name: str, default: float) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), default, dtype=np.float32)
    text = table[name].str.strip()
    raw = table[name].to_numpy(dtype=object)
    numbers = pd.to_numeric(text.where(text != "", str(default)),
                            errors="coerce").to_numpy(dtype=float)
    _fail_at(path, ~np.isfinite(numbers), name, raw, "not a finite number", table.index)
    return numbers.astype(np.float32)


def _booleans(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.zeros(len(table), dtype=np.int64)
    values = table[name].str.strip().str.lower()
    is_true = values.isin(_TRUE).to_numpy()
    _fail_at(path, ~(is_true | values.isin(_FALSE).to_numpy()), name,
             table[name].to_numpy(dtype=object), "not a boolean", table.index)
    return is_true.astype(np.int64)


def _iso_seconds(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    raw = table[name].to_numpy(dtype=object)
    moments = pd.to_datetime(table[name].str.strip(), errors="coerce", utc=True)
    _fail_at(path, moments.isna().to_numpy(), name, raw, "not an ISO-8601 timestamp",
             table.index)
    return (moments.astype("int64") // 1_000_000_000).to_numpy(dtype=np.int64)


def _release_days(table: pd.DataFrame, path: str, name: str) -> np.ndarray:
    """Days since 1970-01-01 of an optional date column: ``YYYY-MM-DD``, or ``YYYY-MM`` /
    ``YYYY`` (Spotify's month and year release-date precisions: the period's first day).
    Empty or no column: `features.NO_RELEASE_DAY`."""
    if name not in table.columns:
        return np.full(len(table), features.NO_RELEASE_DAY, dtype=np.int64)
    text = table[name].str.strip()
    full = text.where(~text.str.fullmatch(r"\d{4}"), text + "-01-01")
    full = full.where(~full.str.fullmatch(r"\d{4}-\d{2}"), full + "-01")
    given = (text != "").to_numpy()
    dates = pd.to_datetime(full.where(given), errors="coerce", format="%Y-%m-%d")
    _fail_at(path, given & dates.isna().to_numpy(), name, table[name].to_numpy(dtype=object),
             "not a date (YYYY-MM-DD, YYYY-MM or YYYY)", table.index)
    days = (dates - pd.Timestamp(0)).dt.days.to_numpy(dtype=float)
    return np.where(given, np.nan_to_num(days), features.NO_RELEASE_DAY).astype(np.int64)


def _plausible_times(path: str, ts: np.ndarray, field: str, rows: pd.Index, now: int,
                     what: str) -> None:
    """Raises for the first timestamp of a `what` (play, like) outside `play_checks`' range."""
    late, early = ts > now + CLOCK_TOLERANCE_SECONDS, ts < EARLIEST_PLAY_TS
    if not (late | early).any():
        return  # the common case: no per-row ISO formatting
    shown = np.array([_iso(t) if 0 <= t <= 253402300799 else str(t) for t in ts], dtype=object)
    _fail_at(path, late, field, shown, f"{what} after the run's clock ({_iso(now)}) + "
             f"{CLOCK_TOLERANCE_SECONDS // 3600} h", rows)
    _fail_at(path, early, field, shown, f"{what} before {_iso(EARLIEST_PLAY_TS)}", rows)


def _check_known(path: str, track_ids: np.ndarray, known: Optional[np.ndarray],
                 field: str, rows: pd.Index) -> None:
    if known is not None:
        # A hash lookup: np.isin on object arrays sorts and is orders of magnitude slower.
        unknown = pd.Index(known).get_indexer(track_ids) < 0
        _fail_at(path, unknown, field, track_ids, "track is not in the catalogue", rows)


def _without_duplicates(table: pd.DataFrame) -> Tuple[pd.DataFrame, int]:
    """The table without exact duplicate rows (the first copy stays) and how many went."""
    copies = table.duplicated().to_numpy()
    return table[~copies], int(copies.sum())


@dataclasses.dataclass
class _ParsedPlays:
    """A plays file before the timestamp check: plays, their data rows - 1, dropped copies."""

    plays: Plays
    rows: pd.Index
    duplicates: int
    ts_field: Optional[str]  # None: the file has no timestamps


def _spotify_plays(path: str, known_tracks: Optional[np.ndarray],
                   drop_copies: bool = True) -> _ParsedPlays:
    table = _read_table(path, SPOTIFY_REQUIRED_COLUMNS)
    table = table[_text(table, "spotify_track_uri") != ""]  # podcasts, audiobooks: not music
    if table.empty:
        raise InputDataError(path, "no music plays (no row has a spotify_track_uri)")
    table, duplicates = _without_duplicates(table) if drop_copies else (table, 0)
    track_id = _id_text(table, path, "spotify_track_uri")
    _check_known(path, track_id, known_tracks, "spotify_track_uri", table.index)
    plays = Plays(
        user_id=_required_text(table, path, "username"),
        track_id=track_id,
        ts=_iso_seconds(table, path, "ts"),
        platform=np.char.lower(_id_text(table, path, "platform").astype(str)).astype(object),
        country=np.char.upper(_id_text(table, path, "conn_country").astype(str)).astype(object),
        ms_played=_integers(table, path, "ms_played"),
        skipped=_booleans(table, path, "skipped"),
        reason_end=_text(table, "reason_end"),
        weight=np.ones(len(table), dtype=np.float32),
    )
    return _ParsedPlays(plays, table.index, duplicates, "ts")


def _generic_plays(path: str, known_tracks: Optional[np.ndarray],
                   drop_copies: bool = True) -> _ParsedPlays:
    table = _read_table(path, GENERIC_REQUIRED_COLUMNS)
    timed = GENERIC_TIMESTAMP in table.columns
    table, duplicates = _without_duplicates(table) if timed and drop_copies else (table, 0)
    track_id = _required_text(table, path, "item_id")
    _check_known(path, track_id, known_tracks, "item_id", table.index)
    weight = _floats(table, path, "weight", 1.0)
    _fail_at(path, weight <= 0, "weight", weight, "weight must be positive", table.index)
    empty = np.full(len(table), "", dtype=object)
    plays = Plays(
        user_id=_required_text(table, path, "user_id"),
        track_id=track_id,
        ts=(_integers(table, path, GENERIC_TIMESTAMP) if timed
            else np.zeros(len(table), dtype=np.int64)),
        platform=empty, country=empty,
        ms_played=np.zeros(len(table), dtype=np.int64),
        skipped=np.zeros(len(table), dtype=np.int64),
        reason_end=empty,
        weight=weight,
    )
    return _ParsedPlays(plays, table.index, duplicates, GENERIC_TIMESTAMP if timed else None)


def _iso(ts: int) -> str:
    return pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_range(path: str, parsed: _ParsedPlays, policy: str, now: int) -> np.ndarray:
    """Which plays have plausible timestamps (see `play_checks`); with REJECT, the first
    implausible one is an error."""
    ts = parsed.plays.ts
    if parsed.ts_field is None:
        return np.ones(len(ts), dtype=bool)
    ceiling = now + CLOCK_TOLERANCE_SECONDS
    late, early = ts > ceiling, ts < EARLIEST_PLAY_TS
    if policy == REJECT:
        _plausible_times(path, ts, parsed.ts_field, parsed.rows, now, "play")
    return ~(late | early)


def read_plays_counted(path: str, layout: str, known_tracks: Optional[np.ndarray] = None,
                       timestamp_policy: str = REJECT, now: Optional[int] = None
                       ) -> Tuple[Plays, Dict[str, int]]:
    """Plays from one plays file of `layout`, and {count name: rows dropped} (READ_COUNT_NAMES).

    Exact duplicate rows of timestamped plays are dropped (`DUPLICATE_PLAYS`). Timestamps
    outside [EARLIEST_PLAY_TS, `now` + CLOCK_TOLERANCE_SECONDS] (`now`: Unix seconds, default
    the current time) are an InputDataError with REJECT, dropped (`OUT_OF_RANGE_PLAYS`) with
    DROP. Simulator layout: rows without a track URI (podcast episodes, audiobooks) are not
    music plays and are dropped uncounted. With `known_tracks`, a play of any other track is
    an error.
    """
    check_timestamp_policy(timestamp_policy)
    reader = _spotify_plays if layout == SIMULATOR else _generic_plays
    parsed = reader(path, known_tracks)
    keep = _in_range(path, parsed, timestamp_policy, int(time.time() if now is None else now))
    counts = {DUPLICATE_PLAYS: parsed.duplicates, OUT_OF_RANGE_PLAYS: int((~keep).sum())}
    plays = parsed.plays if keep.all() else parsed.plays.take(keep)
    if not len(plays):
        raise InputDataError(path, "no plays left after dropping out-of-range timestamps")
    return plays, counts


def read_spotify_plays(path: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Every music play of one CSV in Spotify's Extended streaming history field names, each
    row validated; unlike `read_plays_counted` it keeps duplicate rows and any timestamp."""
    return _spotify_plays(path, known_tracks, drop_copies=False).plays


def read_generic_interactions(path: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Every play of a generic `interactions.csv` (user_id,item_id[,timestamp][,weight]),
    each row validated; unlike `read_plays_counted` it keeps duplicate rows and any timestamp.

    Without a timestamp column every play gets timestamp 0: the data has no order.
    """
    return _generic_plays(path, known_tracks, drop_copies=False).plays


def read_plays(path: str, layout: str, known_tracks: Optional[np.ndarray] = None) -> Plays:
    """Plays from one plays file of the given layout (see `read_plays_counted`)."""
    return read_plays_counted(path, layout, known_tracks)[0]


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
    genres = _id_text(table, path, "genres" if "genres" in table.columns else "genre")
    return Catalogue(
        track_id=track_id,
        artist=_id_text(table, path, "artist"),
        genres=_padded_lists(genres, features.MAX_GENRES),
        tags=_padded_lists(_id_text(table, path, "tags"), features.MAX_TAGS),
        audio=np.stack([_floats(table, path, column, 0.0) for column in AUDIO_COLUMNS],
                       axis=1),
        title=_text(table, "title"),
        release_day=_release_days(table, path, "release_date"),
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
        title=np.full(size, "", dtype=object),
        release_day=np.full(size, features.NO_RELEASE_DAY, dtype=np.int64),
    )


def read_catalogue_source(path: str) -> Catalogue:
    """The catalogue at whatever `catalogue_pattern` matched: a catalogue, or interactions
    (every item in it, whatever its timestamp: the plays reader applies the policy)."""
    if os.path.basename(path) == INTERACTIONS_FILE:
        return catalogue_from_track_ids(read_generic_interactions(path).track_id)
    return read_catalogue(path)


def read_json(path: str):
    """The JSON document in a local file (UTF-8, a BOM allowed); InputDataError if it is not."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(path, f"not JSON: {error}") from None


def likes_path(data_dir: str, layout: str) -> Optional[str]:
    """The folder's ``likes.csv``, or None: only the simulator layout holds likes."""
    path = os.path.join(data_dir, LIKES_FILE)
    return path if layout == SIMULATOR and tf.io.gfile.exists(path) else None


def read_likes(path: str, known_tracks: Optional[np.ndarray] = None,
               now: Optional[int] = None) -> Likes:
    """The likes in ``likes.csv`` (``user_id,track_id[,ts]``), each row validated.

    ``ts`` is ISO-8601 UTC (as in the plays) or empty for a like saved at an unknown time
    (`NO_TIME`); a timestamp outside `play_checks`' range is an error, whatever the run's
    timestamp policy (a like has no play to drop with it). With `known_tracks`, a like of a
    track outside the catalogue is an error. A (user, track) liked twice keeps its earliest
    like, an unknown time counting as earliest. A header-only file is no likes.
    """
    table = _read_table(path, ("user_id", "track_id"), allow_empty=True)
    user_id = _required_text(table, path, "user_id")
    track_id = _required_text(table, path, "track_id")
    _check_known(path, track_id, known_tracks, "track_id", table.index)
    ts = np.full(len(table), NO_TIME, dtype=np.int64)
    timed = (_text(table, "ts") != "") if "ts" in table.columns else np.zeros(len(table), bool)
    if timed.any():
        ts[timed] = _iso_seconds(table[timed], path, "ts")
        _plausible_times(path, ts[timed], "ts", table.index[timed],
                         int(time.time() if now is None else now), "like")
    order = np.lexsort((ts, track_id, user_id))
    first = ~pd.DataFrame({"u": user_id[order], "t": track_id[order]}).duplicated().to_numpy()
    return Likes(user_id, track_id, ts).take(order[first])
