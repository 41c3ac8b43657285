"""Converter of Spotify "Extended streaming history" exports into crossfade's ``simulator`` layout.

Input: files ``Streaming_History_Audio_*.json`` (and ``YourLibrary.json``, below), found
recursively under the source folder,
each a JSON array of play records (objects). One user's export may sit directly in the source
folder, or each user's in its own sub-folder
(``<source>/<name>/**/Streaming_History_Audio_*.json``).
A record's user is its ``username`` when that is a non-empty string (older exports), otherwise
the name of the first folder below the source folder on the file's path (the source folder's
own name for files directly in it). Hidden folders (names starting with ".") are not searched.
Fields used::

    ts                                  ISO-8601 UTC time the play ended, "2023-01-05T18:22:11Z"
    ms_played                           non-negative integer
    spotify_track_uri                   string; null for podcast episodes and audiobooks
    username, platform, conn_country, master_metadata_track_name,
    master_metadata_album_artist_name, master_metadata_album_album_name,
    reason_start, reason_end            string or null
    shuffle, skipped, offline           boolean or null (null is written as false)
    incognito_mode                      boolean or null: plays in a private session (true) are
                                        dropped unless ``keep_incognito``; never written
    episode_name, episode_show_name, spotify_episode_uri, audiobook_*
                                        only to say why a record without a track URI is dropped

Everything else in a record (``ip_addr``/``ip_addr_decrypted``, ``user_agent_decrypted``,
``offline_timestamp``, ...) is never read into the output: only the columns above are
written, so personal data that the pipeline does not need stays out.

User names: with a `pseudonym_key` (what `importers.import_dataset` passes by default) every
resolved user name -- the ``username`` field or the folder name standing for it -- is written
as its keyed pseudonym (`pseudonyms.pseudonym`), so training data, stored histories and the
model's vocabulary hold no real names; with ``None`` names are written verbatim.

Output:

* ``catalogue.csv`` with `layout.CATALOGUE_COLUMNS`, one row per distinct track URI (sorted):
  ``track_id`` = the URI; ``title``, ``artist``, ``album`` from the ``master_metadata_*``
  fields of the track's latest play that has them; the other columns empty.
* ``plays/span-YYYYMM/plays.csv`` with `layout.PLAY_COLUMNS`, one folder per UTC calendar
  month, rows sorted by user and time; ``username`` is the resolved user (or its pseudonym),
  ``ts`` is written as
  ``YYYY-MM-DDTHH:MM:SSZ`` and booleans as ``true``/``false``.

* ``likes.csv`` (`layout.LIKE_COLUMNS`) when a ``YourLibrary.json`` (the account-data
  export's library, `spotify_library`) lies in a user's folder: one row per saved track, ``ts``
  empty (Spotify records no time for a save). The library is the folder's user's: the one user
  its history files resolve to (the folder's name when it has none); a folder whose plays are
  of several users is an error. Saved tracks nobody played join the catalogue with the
  library's title, artist and album. The manifest counts ``saved_tracks`` and
  ``saved_entries_not_tracks`` (local files).

Incognito plays (unless kept), then records without a track URI, and exact repeats of a play
(the same file imported twice), are dropped and counted. Line breaks inside text values are
replaced by spaces so every CSV record is one line.
"""
import csv
import os
from typing import Callable, List, Optional, Tuple

import numpy as np
import pandas as pd

from crossfade.components.listening_data import layout, pseudonyms, sources, spotify_library
from crossfade.components.listening_data.conversion import Conversion

FILE_PREFIX = "Streaming_History_Audio_"
FILE_SUFFIX = ".json"

_TEXT_FIELDS = ("platform", "conn_country", "master_metadata_track_name",
                "master_metadata_album_artist_name", "master_metadata_album_album_name",
                "reason_start", "reason_end")
_BOOLEAN_FIELDS = ("shuffle", "skipped", "offline")
_EPISODE_FIELDS = ("spotify_episode_uri", "episode_name", "episode_show_name")
_AUDIOBOOK_FIELDS = ("audiobook_uri", "audiobook_title", "audiobook_chapter_uri",
                     "audiobook_chapter_title")
_METADATA = {"title": "master_metadata_track_name",
             "artist": "master_metadata_album_artist_name",
             "album": "master_metadata_album_album_name"}

DROPPED_PODCAST_EPISODES = "podcast_episodes"
DROPPED_AUDIOBOOKS = "audiobooks"
DROPPED_WITHOUT_TRACK_URI = "plays_without_track_uri"  # e.g. local files
DROPPED_DUPLICATE_PLAYS = "duplicate_plays"
DROPPED_INCOGNITO_PLAYS = "incognito_plays"  # incognito_mode true: a private session

# Spotify writes "2023-01-05T18:22:11Z"; fractions and explicit offsets are accepted too. The
# shape is checked first because pandas would also parse "01/05/2023" or "2023".
_ISO_8601 = (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?"
             r"(Z|[+-]\d{2}:?\d{2})?")

_MISSING = object()  # a field absent from a record, as opposed to JSON null


def _is_history_file(name: str) -> bool:
    return name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIX)


def _export_files(source_dir: str, wanted: Callable[[str], bool]) -> List[Tuple[str, str]]:
    """(path, user from the folder) of every file whose name is `wanted`, in a
    deterministic order."""
    own_name = os.path.basename(os.path.abspath(source_dir))
    found = []
    for folder, subfolders, names in os.walk(source_dir):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        relative = os.path.relpath(folder, source_dir)
        user = own_name if relative == os.curdir else relative.split(os.sep)[0]
        found.extend((os.path.join(folder, name), user) for name in sorted(names)
                     if wanted(name))
    return found


def _load_records(path: str) -> List[dict]:
    records = sources.read_json(path)
    if not isinstance(records, list):
        raise sources.InputDataError(
            path, f"not a JSON array of play records (the top level is a {type(records).__name__})")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise sources.InputDataError(
                path, f"record is not a JSON object: {record!r:.80}", row=index + 1)
    return records


def _field(records: List[dict], name: str) -> pd.Series:
    # fromiter: no intermediate list, several times faster than pd.Series(list) here.
    return pd.Series(np.fromiter((record.get(name, _MISSING) for record in records),
                                 dtype=object, count=len(records)), dtype=object)


def _raise_first(path: str, bad: np.ndarray, values: pd.Series, field: str,
                 message: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row]
        shown = "field is missing" if value is _MISSING else f"{message}: {value!r:.80}"
        raise sources.InputDataError(path, shown, row=row + 1, field=field)


def _types(values: pd.Series) -> np.ndarray:
    # One pass with the builtin `type`, then cheap comparisons: far faster than a Python
    # predicate per value, and exact (bool is not int, _MISSING is an `object`).
    return values.map(type).to_numpy(dtype=object)


def _of_type(types: np.ndarray, kind: type) -> np.ndarray:
    """Which entries of `types` (from `_types`) are exactly `kind`, elementwise."""
    return types == kind


def _is_null(types: np.ndarray) -> np.ndarray:
    return _of_type(types, type(None)) | _of_type(types, object)


def _optional_text(path: str, records: List[dict], name: str) -> np.ndarray:
    """A string-or-null field as strings ("" for null or absent), one line each."""
    values = _field(records, name)
    types = _types(values)
    is_text = _of_type(types, str)
    _raise_first(path, ~(is_text | _is_null(types)), values, name, "not a string")
    # Cleaned per distinct value: platforms, countries and titles repeat a lot.
    codes, distinct = pd.factorize(values.where(is_text, ""))
    cleaned = pd.Series(distinct, dtype=object).str.replace(r"[\r\n]+", " ", regex=True)
    return cleaned.str.strip().to_numpy(dtype=object)[codes]


def _booleans(path: str, records: List[dict], name: str) -> np.ndarray:
    values = _field(records, name)
    types = _types(values)
    is_bool = _of_type(types, bool)
    _raise_first(path, ~(is_bool | _is_null(types)), values, name, "not a boolean")
    return np.where(is_bool, values.to_numpy(dtype=object), False).astype(bool)


def _has_any(records: List[dict], names: Tuple[str, ...]) -> np.ndarray:
    """Whether each record has a non-empty string in any of `names`.

    Not validated further: these fields only say why a record is dropped and are never written.
    """
    return np.array([any(isinstance(record.get(name), str) and record[name].strip() != ""
                         for name in names) for record in records], dtype=bool)


def _timestamps(path: str, records: List[dict]) -> pd.Series:
    values = _field(records, "ts")
    _raise_first(path, ~_of_type(_types(values), str), values, "ts", "not a string")
    text = values.astype(str).str.strip()
    moments = pd.to_datetime(text.where(text.str.fullmatch(_ISO_8601), None), utc=True,
                             errors="coerce")
    _raise_first(path, moments.isna().to_numpy(), values, "ts", "not an ISO-8601 timestamp")
    return moments.dt.tz_localize(None)  # naive UTC: plain datetime64 columns


def _read_file(path: str, folder_user: str) -> pd.DataFrame:
    """The whitelisted fields of one history file's records, validated."""
    records = _load_records(path)
    moments = _timestamps(path, records)

    ms_played = _field(records, "ms_played")
    # type() rather than isinstance: JSON true/false load as bool, a subclass of int.
    valid = ms_played.map(
        lambda value: type(value) is int and 0 <= value < 2**63).to_numpy(dtype=bool)
    _raise_first(path, ~valid, ms_played, "ms_played", "not a non-negative integer")

    uri = _field(records, "spotify_track_uri")
    types = _types(uri)
    _raise_first(path, _of_type(types, object), uri, "spotify_track_uri", "field is missing")
    track_id = uri.where(_of_type(types, str), "").str.strip()
    is_uri = track_id.to_numpy() != ""
    _raise_first(path, ~(is_uri | _of_type(types, type(None))), uri, "spotify_track_uri",
                 "not a non-empty string or null")

    username = _optional_text(path, records, "username")
    frame = pd.DataFrame({
        "moment": moments.to_numpy(),  # naive UTC datetime64
        "username": np.where(username != "", username, folder_user),
        "folder": folder_user,  # whose export: a YourLibrary.json beside it is theirs
        "ms_played": ms_played.to_numpy(dtype=np.int64),
        "spotify_track_uri": track_id.to_numpy(dtype=object),
    })
    for name in _TEXT_FIELDS:
        frame[name] = _optional_text(path, records, name)
    for name in _BOOLEAN_FIELDS:
        frame[name] = _booleans(path, records, name)
    frame["incognito"] = _booleans(path, records, "incognito_mode")
    # Only records without a track are looked at: the rest are most of a file and never need it.
    without_track = np.flatnonzero(~is_uri)
    others = [records[index] for index in without_track]
    frame["is_episode"] = False
    frame["is_audiobook"] = False
    frame.loc[without_track, "is_episode"] = _has_any(others, _EPISODE_FIELDS)
    frame.loc[without_track, "is_audiobook"] = _has_any(others, _AUDIOBOOK_FIELDS)
    return frame


def _catalogue(plays: pd.DataFrame, saved: pd.DataFrame) -> pd.DataFrame:
    """One row per track, metadata from its latest play that has each field; a saved track
    nobody played, from the library."""
    by_time = plays.sort_values("moment", kind="mergesort")
    metadata = by_time[["spotify_track_uri", *_METADATA.values()]].replace("", np.nan)
    latest = metadata.groupby("spotify_track_uri", sort=True).last().fillna("")
    latest = latest.rename(columns={field: column for column, field in _METADATA.items()})
    only_saved = saved[~saved.track_id.isin(latest.index)].drop_duplicates("track_id")
    latest = pd.concat([latest, only_saved.set_index("track_id")[list(_METADATA)]]).sort_index()
    catalogue = pd.DataFrame("", index=range(len(latest)), columns=layout.CATALOGUE_COLUMNS)
    catalogue["track_id"] = latest.index.to_numpy(dtype=object)
    for column in _METADATA:
        catalogue[column] = latest[column].to_numpy(dtype=object)
    return catalogue


def _write_csv(table: pd.DataFrame, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Minimal quoting escapes commas and quotes in titles; "\n" endings on every platform.
    table.to_csv(path, index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL,
                 lineterminator="\n")


def _drop_unwanted(source_dir: str, plays: pd.DataFrame,
                   keep_incognito: bool) -> Tuple[pd.DataFrame, dict]:
    """`plays` without incognito plays (unless kept), non-music records and exact repeats.

    Returns the kept plays (without the helper columns) and reason -> rows dropped. Incognito
    plays are counted first, whatever their kind. Raises InputDataError if no play is left.
    """
    incognito = plays.incognito.to_numpy() & (not keep_incognito)
    has_uri = plays.spotify_track_uri.to_numpy() != ""
    no_uri = ~incognito & ~has_uri
    episode = no_uri & plays.is_episode.to_numpy()
    audiobook = no_uri & ~episode & plays.is_audiobook.to_numpy()
    dropped = {
        DROPPED_INCOGNITO_PLAYS: int(incognito.sum()),
        DROPPED_PODCAST_EPISODES: int(episode.sum()),
        DROPPED_AUDIOBOOKS: int(audiobook.sum()),
        DROPPED_WITHOUT_TRACK_URI: int((no_uri & ~episode & ~audiobook).sum()),
    }
    plays = plays[~incognito & has_uri].drop(columns=["is_episode", "is_audiobook", "incognito",
                                                      "folder"])
    if plays.empty:
        raise sources.InputDataError(
            source_dir, "no music plays: every record lacks a spotify_track_uri (podcasts or "
            "audiobooks only)" + (" or is an incognito play" if incognito.any() else ""))
    duplicated = plays.duplicated().to_numpy()
    dropped[DROPPED_DUPLICATE_PLAYS] = int(duplicated.sum())
    return plays[~duplicated], dropped


def _pseudonymise(source_dir: str, usernames: pd.Series, key: bytes) -> np.ndarray:
    """`usernames` replaced by their pseudonyms under `key` (hashed once per distinct name).

    Raises InputDataError if two distinct names share a pseudonym (odds ~n²/2^65) rather
    than silently merge two users.
    """
    codes, names = pd.factorize(usernames)
    mapped = np.array([pseudonyms.pseudonym(key, name) for name in names], dtype=object)
    if len(set(mapped)) != len(mapped):
        raise sources.InputDataError(source_dir, "two user names have the same pseudonym "
                                     "under this key; import again with a new key")
    return mapped[codes]


def _saved_tracks(source_dir: str, owners: pd.Series) -> Tuple[pd.DataFrame, int]:
    """Every YourLibrary.json's saved tracks with their user (column ``user``), and the
    entries that were not tracks. `owners`: folder user -> the users its plays resolved to."""
    found, not_tracks = [], 0
    for path, folder_user in _export_files(source_dir,
                                           lambda name: name == spotify_library.LIBRARY_FILE):
        users = sorted(owners.get(folder_user, [folder_user]))
        if len(users) > 1:
            raise sources.InputDataError(path, f"whose library is this? The plays beside it "
                                         f"are of {len(users)} users ('username' fields)")
        saved, skipped = spotify_library.read_saved_tracks(path)
        found.append(saved.assign(user=users[0]))
        not_tracks += skipped
    columns = ["user", "track_id", *_METADATA]
    saved = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=columns)
    return saved.drop_duplicates(["user", "track_id"]), not_tracks


def _write_likes(saved: pd.DataFrame, out_dir: str) -> None:
    """likes.csv: one row per saved (user, track), sorted, at an unknown time (empty ts)."""
    likes = pd.DataFrame({"user_id": saved.user, "track_id": saved.track_id, "ts": ""},
                         columns=list(layout.LIKE_COLUMNS))
    _write_csv(likes.sort_values(["user_id", "track_id"]),
               os.path.join(out_dir, layout.LIKES_FILE))


def _write_outputs(plays: pd.DataFrame, saved: pd.DataFrame, out_dir: str) -> None:
    """catalogue.csv, one plays/span-YYYYMM/plays.csv per month of `plays` (sorted), and
    likes.csv when anything was saved."""
    _write_csv(_catalogue(plays, saved), os.path.join(out_dir, layout.CATALOGUE_FILE))
    if len(saved):
        _write_likes(saved, out_dir)
    moments = plays.moment.to_numpy()
    # numpy formats datetimes ~10x faster than Series.dt.strftime.
    output = plays.assign(
        ts=pd.Series(np.datetime_as_string(moments, unit="s"), index=plays.index) + "Z",
        **{name: np.where(plays[name].to_numpy(), "true", "false") for name in _BOOLEAN_FIELDS})
    months = moments.astype("datetime64[M]")
    for month in np.unique(months):
        # "2023-01" -> span-202301
        span = layout.span_name(int(str(month).replace("-", "")), digits=6)
        _write_csv(output.loc[months == month, list(layout.PLAY_COLUMNS)],
                   os.path.join(out_dir, layout.PLAYS_DIR, span, layout.PLAYS_FILE))


def convert(source_dir: str, out_dir: str, *, pseudonym_key: Optional[bytes],
            keep_incognito: bool = False) -> Conversion:
    """Writes the simulator layout of the Spotify exports under `source_dir` into `out_dir`.

    `pseudonym_key`: user names are written as their pseudonyms under this key (None: verbatim).
    `keep_incognito`: keep plays with ``incognito_mode`` true (default: dropped and counted).
    The manifest notes record both choices and the key's public `pseudonyms.key_id`.
    """
    files = _export_files(source_dir, _is_history_file)
    if not files:
        raise sources.InputDataError(
            source_dir, f"no {FILE_PREFIX}*{FILE_SUFFIX} files in this folder or below it")
    plays = pd.concat([_read_file(path, user) for path, user in files], ignore_index=True)
    saved, not_tracks = _saved_tracks(source_dir, plays.groupby("folder").username.unique())
    plays, dropped = _drop_unwanted(source_dir, plays, keep_incognito)
    if pseudonym_key is not None:
        names = _pseudonymise(source_dir, pd.concat([plays.username, saved.user]),
                              pseudonym_key)
        plays = plays.assign(username=names[:len(plays)])
        saved = saved.assign(user=names[len(plays):])
    # Stable, so plays at the same second keep their order in the export.
    plays = plays.sort_values(["username", "moment"], kind="mergesort")
    _write_outputs(plays, saved, out_dir)
    notes = {"incognito_plays": "kept" if keep_incognito else "dropped",
             "usernames": "verbatim" if pseudonym_key is None else "pseudonymised"}
    if len(saved) or not_tracks:
        notes.update(saved_tracks=len(saved), saved_entries_not_tracks=not_tracks)
    if pseudonym_key is not None:
        notes["pseudonym_key_id"] = pseudonyms.key_id(pseudonym_key)
    return Conversion(
        layout=layout.SIMULATOR,
        users=int(plays.username.nunique()),
        items=int(pd.concat([plays.spotify_track_uri, saved.track_id]).nunique()),
        interactions=len(plays),
        has_timestamps=True,
        dropped=dropped,
        manifest_notes=notes,
    )
