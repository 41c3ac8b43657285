"""Reader of the saved tracks in Spotify's account-data export (``YourLibrary.json``).

Spotify's "Account data" export keeps a listener's library in ``YourLibrary.json``: a JSON
object whose ``tracks`` entry lists the tracks they saved ("liked")::

    {"tracks": [{"artist": "Artist", "album": "Album", "track": "Title",
                 "uri": "spotify:track:6rqhFgbbKwnb9MLmUQDhG6"}, ...],
     "albums": [...], "shows": [...], "episodes": [...], "bannedTracks": [...], ...}

Only ``tracks`` is read; albums, artists, shows, episodes and bans are not likes of a track
and are never read. A save carries no time, so every saved track becomes a like at an unknown
time (an empty ``ts`` in ``likes.csv``): a training-only positive
(components/example_gen/likes.py). An entry whose ``uri`` is not a ``spotify:track:`` URI (a
local file) is dropped and counted. Whose library it is -- the folder's user -- is decided by
the streaming-history converter (`spotify_history`), which calls `read_saved_tracks`.
"""
from typing import Tuple

import pandas as pd

from crossfade.components.listening_data import sources

LIBRARY_FILE = "YourLibrary.json"
TRACK_URI_PREFIX = "spotify:track:"
_TEXT = {"title": "track", "artist": "artist", "album": "album"}


def _text(path: str, index: int, entry: dict, name: str) -> str:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise sources.InputDataError(path, f"not a string: {value!r:.80}", row=index + 1,
                                     field=name)
    return " ".join((value or "").split())  # one line: CSV records and vocabularies


def read_saved_tracks(path: str) -> Tuple[pd.DataFrame, int]:
    """The saved tracks of one ``YourLibrary.json`` (columns ``track_id``, ``title``,
    ``artist``, ``album``; distinct track ids, in file order) and how many entries were not
    tracks. Errors name the file, the entry of ``tracks`` (as the row, from 1) and the field.
    """
    library = sources.read_json(path)
    if not isinstance(library, dict):
        raise sources.InputDataError(path, "not a JSON object with a 'tracks' list (the top "
                                     f"level is a {type(library).__name__})")
    entries = library.get("tracks", [])
    if not isinstance(entries, list):
        raise sources.InputDataError(path, f"not a list: {entries!r:.80}", field="tracks")
    rows, not_tracks = [], 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise sources.InputDataError(path, f"entry is not a JSON object: {entry!r:.80}",
                                         row=index + 1, field="tracks")
        uri = entry.get("uri")
        if not isinstance(uri, str) or not uri.strip():
            raise sources.InputDataError(path, f"not a non-empty string: {uri!r:.80}",
                                         row=index + 1, field="uri")
        if not uri.strip().startswith(TRACK_URI_PREFIX):
            not_tracks += 1
            continue
        rows.append({"track_id": uri.strip(),
                     **{column: _text(path, index, entry, name)
                        for column, name in _TEXT.items()}})
    saved = pd.DataFrame(rows, columns=["track_id", *_TEXT])
    return saved.drop_duplicates("track_id").reset_index(drop=True), not_tracks
