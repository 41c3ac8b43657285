"""Readers for the listening-log folders crossfade accepts, with row-level validation.

Two layouts are recognised (`detect_layout`):

* ``simulator`` (also what `crossfade generate` writes): ``catalogue.csv`` plus one folder per
  day, ``plays/span-NNNN/*.csv``, in the field names of Spotify's "Extended streaming history"
  export (``ts``, ``username``, ``platform``, ``ms_played``, ``spotify_track_uri``, ...).
* ``generic``: ``interactions.csv`` with header ``user_id,item_id,timestamp[,weight]``
  (timestamp in Unix seconds) and optionally ``items.csv`` (``item_id`` plus any metadata
  columns; ``artist``, ``genres``, ``tags`` and the audio descriptor names are used).

Both are parsed into the same canonical records, so everything downstream is layout-agnostic.
Every problem is raised as `InputDataError` naming the file, the line and the field.
"""
import csv
import dataclasses
import datetime
import math
import os
from typing import Container, Dict, Iterator, List, Optional, Sequence

from components import features

SIMULATOR = "simulator"
GENERIC = "generic"

CATALOGUE_FILE = "catalogue.csv"
PLAYS_DIR = "plays"
INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.csv"

SPOTIFY_REQUIRED_COLUMNS = ("ts", "username", "ms_played", "spotify_track_uri")
GENERIC_REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
CATALOGUE_REQUIRED_COLUMNS = ("track_id",)
LIST_SEPARATOR = "|"

# Audio descriptor columns as named in catalogue.csv / items.csv.
AUDIO_COLUMNS = tuple(name[len("track_"):] for name in features.AUDIO_DESCRIPTORS)


class InputDataError(ValueError):
    """Input data that crossfade cannot use, located by file, line and field."""

    def __init__(self, path: str, message: str, line: Optional[int] = None,
                 field: Optional[str] = None):
        location = path
        if line is not None:
            location += f", line {line}"
        if field is not None:
            location += f", field '{field}'"
        super().__init__(f"{location}: {message}")
        self.path = path
        self.line = line
        self.field = field


@dataclasses.dataclass(frozen=True)
class Play:
    """One play event in canonical form."""

    user_id: str
    track_id: str
    ts: int
    platform: str = ""
    country: str = ""
    ms_played: int = 0
    skipped: int = 0
    reason_end: str = ""
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class Track:
    """One catalogue track in canonical form; lists are unpadded."""

    track_id: str
    artist: str = ""
    genres: Sequence[str] = ()
    tags: Sequence[str] = ()
    audio: Sequence[float] = (0.0,) * len(AUDIO_COLUMNS)


def detect_layout(data_dir: str) -> str:
    """Returns SIMULATOR or GENERIC for `data_dir`, or raises InputDataError."""
    if not os.path.isdir(data_dir):
        raise InputDataError(data_dir, "data folder does not exist")
    if os.path.isdir(os.path.join(data_dir, PLAYS_DIR)):
        if not os.path.isfile(os.path.join(data_dir, CATALOGUE_FILE)):
            raise InputDataError(os.path.join(data_dir, CATALOGUE_FILE),
                                 "missing: a plays/ folder needs its catalogue.csv")
        return SIMULATOR
    if os.path.isfile(os.path.join(data_dir, INTERACTIONS_FILE)):
        return GENERIC
    raise InputDataError(
        data_dir, f"no listening data: expected {PLAYS_DIR}/span-NNNN/*.csv with "
        f"{CATALOGUE_FILE}, or {INTERACTIONS_FILE} [+ {ITEMS_FILE}]")


def plays_pattern(layout: str) -> str:
    """The ExampleGen input pattern (relative to the data folder) for a layout's plays."""
    return f"{PLAYS_DIR}/span-*/*.csv" if layout == SIMULATOR else INTERACTIONS_FILE


def catalogue_pattern(data_dir: str, layout: str) -> str:
    """The ExampleGen input pattern for a folder's catalogue.

    A generic folder without items.csv has no catalogue file: its catalogue is every item in
    interactions.csv, without content features.
    """
    if layout == SIMULATOR:
        return CATALOGUE_FILE
    if os.path.isfile(os.path.join(data_dir, ITEMS_FILE)):
        return ITEMS_FILE
    return INTERACTIONS_FILE


def read_catalogue_source(path: str) -> Iterator[Track]:
    """Tracks from whatever `catalogue_pattern` matched: a catalogue, or interactions only."""
    if os.path.basename(path) == INTERACTIONS_FILE:
        return iter(catalogue_from_plays(list(read_generic_interactions(path))))
    return read_catalogue(path)


def _open_rows(path: str, required: Sequence[str]) -> Iterator[Dict[str, str]]:
    """Yields rows as dicts with a '_line' key; checks the header first."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise InputDataError(path, "file is empty (no header row)", line=1)
        missing = [name for name in required if name not in reader.fieldnames]
        if missing:
            raise InputDataError(path, f"missing column(s) {missing}; header is "
                                 f"{reader.fieldnames}", line=1, field=missing[0])
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                raise InputDataError(path, "wrong number of fields", line=reader.line_num)
            row["_line"] = reader.line_num
            yield row


def _required_text(row: Dict[str, str], path: str, name: str) -> str:
    value = row[name].strip()
    if not value:
        raise InputDataError(path, "empty value", line=row["_line"], field=name)
    return value


def _number(row: Dict[str, str], path: str, name: str, kind=float, default=None):
    text = (row.get(name) or "").strip()
    if not text:
        if default is not None:
            return default
        raise InputDataError(path, "empty value", line=row["_line"], field=name)
    try:
        value = kind(text)
    except ValueError:
        raise InputDataError(path, f"not a number: {text!r}", line=row["_line"],
                             field=name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InputDataError(path, f"not a finite number: {text!r}", line=row["_line"],
                             field=name)
    return value


def _boolean(row: Dict[str, str], path: str, name: str) -> int:
    text = (row.get(name) or "").strip().lower()
    if text in ("true", "1"):
        return 1
    if text in ("false", "0", "", "null", "none"):
        return 0
    raise InputDataError(path, f"not a boolean: {text!r}", line=row["_line"], field=name)


def _iso_seconds(row: Dict[str, str], path: str, name: str) -> int:
    text = _required_text(row, path, name)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputDataError(path, f"not an ISO-8601 timestamp: {text!r}",
                             line=row["_line"], field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


def _check_known(track_id: str, known_tracks: Optional[Container[str]], path: str,
                 row: Dict[str, str], field: str) -> None:
    if known_tracks is not None and track_id not in known_tracks:
        raise InputDataError(path, f"track {track_id!r} is not in the catalogue",
                             line=row["_line"], field=field)


def read_spotify_plays(path: str,
                       known_tracks: Optional[Container[str]] = None) -> Iterator[Play]:
    """Plays from one CSV in Spotify's Extended streaming history field names.

    Rows without a track URI (podcast episodes, audiobooks) are not music plays and are skipped.
    With `known_tracks`, a play of any other track is an error.
    """
    empty = True
    for row in _open_rows(path, SPOTIFY_REQUIRED_COLUMNS):
        empty = False
        track_id = (row["spotify_track_uri"] or "").strip()
        if not track_id:
            continue
        _check_known(track_id, known_tracks, path, row, "spotify_track_uri")
        ms_played = _number(row, path, "ms_played", int)
        if ms_played < 0:
            raise InputDataError(path, f"negative: {ms_played}", line=row["_line"],
                                 field="ms_played")
        yield Play(
            user_id=_required_text(row, path, "username"),
            track_id=track_id,
            ts=_iso_seconds(row, path, "ts"),
            platform=(row.get("platform") or "").strip().lower(),
            country=(row.get("conn_country") or "").strip().upper(),
            ms_played=ms_played,
            skipped=_boolean(row, path, "skipped"),
            reason_end=(row.get("reason_end") or "").strip(),
        )
    if empty:
        raise InputDataError(path, "no plays: the file has a header but no rows")


def read_generic_interactions(path: str,
                              known_tracks: Optional[Container[str]] = None) -> Iterator[Play]:
    """Plays from a generic `interactions.csv` (user_id,item_id,timestamp[,weight])."""
    empty = True
    for row in _open_rows(path, GENERIC_REQUIRED_COLUMNS):
        empty = False
        timestamp = _number(row, path, "timestamp", int)
        if timestamp < 0:
            raise InputDataError(path, f"negative Unix time: {timestamp}", line=row["_line"],
                                 field="timestamp")
        weight = _number(row, path, "weight", float, default=1.0)
        if weight <= 0:
            raise InputDataError(path, f"weight must be positive, got {weight}",
                                 line=row["_line"], field="weight")
        track_id = _required_text(row, path, "item_id")
        _check_known(track_id, known_tracks, path, row, "item_id")
        yield Play(
            user_id=_required_text(row, path, "user_id"),
            track_id=track_id,
            ts=timestamp,
            weight=weight,
        )
    if empty:
        raise InputDataError(path, "no interactions: the file has a header but no rows")


def read_plays(path: str, layout: str,
               known_tracks: Optional[Container[str]] = None) -> Iterator[Play]:
    """Plays from one plays file of the given layout (see `read_spotify_plays`)."""
    if layout == SIMULATOR:
        return read_spotify_plays(path, known_tracks)
    return read_generic_interactions(path, known_tracks)


def _split_list(text: Optional[str]) -> List[str]:
    return [item.strip() for item in (text or "").split(LIST_SEPARATOR) if item.strip()]


def read_catalogue(path: str) -> Iterator[Track]:
    """Tracks from `catalogue.csv` (id column `track_id`) or `items.csv` (`item_id`)."""
    id_column = "item_id" if os.path.basename(path) == ITEMS_FILE else "track_id"
    seen = set()
    for row in _open_rows(path, (id_column,)):
        track_id = _required_text(row, path, id_column)
        if track_id in seen:
            raise InputDataError(path, f"duplicate track id {track_id!r}", line=row["_line"],
                                 field=id_column)
        seen.add(track_id)
        yield Track(
            track_id=track_id,
            artist=(row.get("artist") or "").strip(),
            genres=_split_list(row.get("genres") or row.get("genre")),
            tags=_split_list(row.get("tags")),
            audio=tuple(_number(row, path, column, float, default=0.0)
                        for column in AUDIO_COLUMNS),
        )
    if not seen:
        raise InputDataError(path, "empty catalogue: the file has a header but no rows")


def catalogue_from_plays(plays: Sequence[Play]) -> List[Track]:
    """A content-free catalogue of every played track, for generic data without items.csv."""
    return [Track(track_id=track_id) for track_id in sorted({p.track_id for p in plays})]
