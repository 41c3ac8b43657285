"""Converter of the HetRec 2011 Last.fm 2k data set into crossfade's ``generic`` layout.

Input (tab-separated, one header row each, no quoting: names may contain quotes and commas):

* ``user_artists.dat`` ``userID  artistID  weight`` (weight = play count), required;
* ``artists.dat`` ``id  name  url  pictureURL``, required (only ``id`` and ``name`` are used);
* ``tags.dat`` ``tagID  tagValue`` and ``user_taggedartists.dat``
  ``userID  artistID  tagID  day  month  year``, optional, as a pair;
* ``user_friends.dat`` ``userID  friendID``, optional.

Output (UTF-8 CSV, minimal quoting):

* ``interactions.csv`` ``user_id,item_id,weight,plays``: one row per user-artist pair, sorted
  by user then artist (numerically). HetRec has no listening timestamps, so there is no
  timestamp column. ``weight`` is 1.0: each pair is one implicit positive, the protocol of
  published results on this data set; ``plays`` keeps the play count.
* ``items.csv`` ``item_id,artist,tags``: one row per artist of ``artists.dat``; ``tags`` holds
  up to ``features.MAX_TAGS`` tag names joined by ``|``, the artist's most applied tags first
  (by number of ``user_taggedartists.dat`` rows, ties by tag name).
* ``friends.csv`` ``user_id,friend_id`` when ``user_friends.dat`` exists.

Ids are written as the data set's numeric ids. Text encoding: each file is decoded as UTF-8
when it is valid UTF-8 and as Latin-1 otherwise; the real ``artists.dat`` is UTF-8 and the real
``tags.dat`` is Latin-1 (e.g. byte 0xE1 in "tropicália"). The encoding used per file is
recorded in the manifest. "|" and line breaks are replaced by a space in artist and tag names,
so that names never split a list or a CSV record.

The data is licensed for non-commercial use only (see the data set's ``readme.txt``); the
manifest says so.
"""
import csv
import io
import os
from typing import Dict, Sequence, Tuple

import numpy as np
import pandas as pd

from crossfade.components import features
from crossfade.components.listening_data import layout, sources
from crossfade.components.listening_data.conversion import Conversion

USER_ARTISTS_FILE = "user_artists.dat"
ARTISTS_FILE = "artists.dat"
TAGS_FILE = "tags.dat"
TAGGED_ARTISTS_FILE = "user_taggedartists.dat"
FRIENDS_FILE = "user_friends.dat"  # written as layout.FRIENDS_FILE

INTERACTION_COLUMNS = ("user_id", "item_id", "weight", "plays")
ITEM_COLUMNS = ("item_id", "artist", "tags")

LICENCE = ("HetRec 2011 Last.fm 2k data is made available for non-commercial use only; "
           "commercial use needs Last.fm's permission. See the data set's readme.txt.")

# Reasons rows are dropped, always reported (0 when nothing was dropped).
DROPPED_TAGS_OF_UNKNOWN_ARTISTS = "tags_of_unknown_artists"
DROPPED_TAGS_OF_UNKNOWN_TAGS = "tags_of_unknown_tags"
DROPPED_TAGS_WITH_EMPTY_NAMES = "tags_with_empty_names"
DROPPED_FRIENDS_OF_UNKNOWN_USERS = "friends_of_unknown_users"
DROPPED_DUPLICATE_FRIENDS = "duplicate_friend_pairs"

# Ids above this do not fit int64; HetRec's are at most five digits.
_MAX_ID_DIGITS = 18


def _decode(path: str) -> Tuple[str, str]:
    """The file's text and the encoding it was read with (see the module docstring)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        # Latin-1 maps every byte, so this cannot fail; it is right for the real tags.dat,
        # whose only non-ASCII bytes are Latin-1 letters.
        return raw.decode("latin-1"), "latin-1"


def _read_dat(path: str, required: Sequence[str]) -> Tuple[pd.DataFrame, str]:
    """All columns of a .dat file as strings, and its encoding; checks header and field counts.

    Row i of the frame is data row i + 1 (the line after the header is row 1).
    """
    text, encoding = _decode(path)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or not lines[0].strip():
        raise sources.InputDataError(path, "file is empty (no header row)")
    header = [name.strip() for name in lines[0].split("\t")]
    missing = [name for name in required if name not in header]
    if missing:
        raise sources.InputDataError(path, f"missing column(s) {missing}; header is {header}",
                                     field=missing[0])
    body = lines[1:]
    if not body:
        raise sources.InputDataError(path, "no rows: the file has a header only")
    # Checked here, not left to pandas: its error names a line, not a row and field, and with
    # too few fields it would silently pad the row.
    tabs = np.fromiter((line.count("\t") for line in body), dtype=np.int64, count=len(body))
    bad = np.flatnonzero(tabs != len(header) - 1)
    if bad.size:
        found = int(tabs[bad[0]]) + 1
        raise sources.InputDataError(
            path, f"expected {len(header)} tab-separated fields, found {found}",
            row=int(bad[0]) + 1, field=header[found] if found < len(header) else None)
    # QUOTE_NONE: HetRec does not quote, and names such as '"Weird Al" Yankovic' start with one.
    table = pd.read_csv(io.StringIO("\n".join(body)), sep="\t", header=None, names=header,
                        dtype=str, keep_default_na=False, na_filter=False,
                        quoting=csv.QUOTE_NONE, skip_blank_lines=False)
    return table, encoding


def _integers(table: pd.DataFrame, path: str, name: str, positive: bool = False) -> np.ndarray:
    """A column of non-negative (or positive) decimal integers as int64."""
    raw = table[name].to_numpy(dtype=object)
    # Ids and counts repeat a lot, so each distinct text is checked and converted once.
    codes, distinct = pd.factorize(raw)
    text = pd.Series(distinct, dtype=object).str.strip()
    digits = text.str.fullmatch(rf"\d{{1,{_MAX_ID_DIGITS}}}").to_numpy(dtype=bool)
    if not digits.all():
        row = int(np.flatnonzero(~digits[codes])[0])
        raise sources.InputDataError(path, f"not a non-negative integer: {raw[row]!r}",
                                     row=row + 1, field=name)
    numbers = text.astype(np.int64).to_numpy()[codes]
    if positive and (numbers <= 0).any():
        row = int(np.flatnonzero(numbers <= 0)[0])
        raise sources.InputDataError(path, f"must be positive: {raw[row]!r}", row=row + 1,
                                     field=name)
    return numbers


def _clean_names(values: pd.Series) -> np.ndarray:
    """Names without list separators or line breaks, which would split a list or a record."""
    return (values.str.replace(r"\s*[|\r\n]+\s*", " ", regex=True).str.strip()
            .to_numpy(dtype=object))


def _check_unique(path: str, values: np.ndarray, field: str, what: str) -> None:
    duplicated = pd.Series(values).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero(values == values[row])[0])
        raise sources.InputDataError(path, f"duplicate {what} {values[row]} (first at row "
                                     f"{first + 1})", row=row + 1, field=field)


def _read_artists(path: str) -> Tuple[np.ndarray, np.ndarray, str]:
    table, encoding = _read_dat(path, ("id", "name"))
    artist_id = _integers(table, path, "id")
    _check_unique(path, artist_id, "id", "artist id")
    name = _clean_names(table["name"])
    if (name == "").any():
        row = int(np.flatnonzero(name == "")[0])
        raise sources.InputDataError(path, "empty artist name", row=row + 1, field="name")
    return artist_id, name, encoding


def _read_listens(path: str, artist_id: np.ndarray) -> Tuple[pd.DataFrame, str]:
    table, encoding = _read_dat(path, ("userID", "artistID", "weight"))
    listens = pd.DataFrame({
        "user": _integers(table, path, "userID"),
        "artist": _integers(table, path, "artistID"),
        "plays": _integers(table, path, "weight", positive=True),
    })
    duplicated = listens.duplicated(["user", "artist"]).to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        user, artist = listens.user[row], listens.artist[row]
        first = int(np.flatnonzero((listens.user == user) & (listens.artist == artist))[0])
        raise sources.InputDataError(
            path, f"duplicate (userID, artistID) pair ({user}, {artist}); first at row "
            f"{first + 1}", row=row + 1, field="artistID")
    # An error, not a drop: the real data has no such rows, so one means a damaged copy.
    unknown = pd.Index(artist_id).get_indexer(listens.artist.to_numpy()) < 0
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise sources.InputDataError(path, f"artist {listens.artist[row]} is not in "
                                     f"{ARTISTS_FILE}", row=row + 1, field="artistID")
    return listens, encoding


def _top_tags(tags_path: str, assignments_path: str, artist_id: np.ndarray,
              dropped: Dict[str, int], encodings: Dict[str, str]) -> pd.Series:
    """Artist id -> its most applied tag names joined by "|"; fills `dropped`."""
    tags, encodings[TAGS_FILE] = _read_dat(tags_path, ("tagID", "tagValue"))
    tag_id = _integers(tags, tags_path, "tagID")
    _check_unique(tags_path, tag_id, "tagID", "tag id")
    tag_name = _clean_names(tags["tagValue"])

    table, encodings[TAGGED_ARTISTS_FILE] = _read_dat(
        assignments_path, ("userID", "artistID", "tagID"))
    _integers(table, assignments_path, "userID")  # unused, but a bad value means a bad file
    artist = _integers(table, assignments_path, "artistID")
    tag_row = pd.Index(tag_id).get_indexer(_integers(table, assignments_path, "tagID"))
    known_artist = pd.Index(artist_id).get_indexer(artist) >= 0
    known_tag = tag_row >= 0
    name = np.where(known_tag, tag_name[tag_row], "")
    dropped[DROPPED_TAGS_OF_UNKNOWN_ARTISTS] = int((~known_artist).sum())
    dropped[DROPPED_TAGS_OF_UNKNOWN_TAGS] = int((known_artist & ~known_tag).sum())
    dropped[DROPPED_TAGS_WITH_EMPTY_NAMES] = int((known_artist & known_tag & (name == "")).sum())
    keep = known_artist & known_tag & (name != "")

    # Counted by name, not id: two ids whose cleaned names coincide are one tag in items.csv.
    counts = (pd.DataFrame({"artist": artist[keep], "tag": name[keep]})
              .groupby(["artist", "tag"]).size().rename("count").reset_index())
    counts = counts.sort_values(["artist", "count", "tag"], ascending=[True, False, True],
                                kind="mergesort")
    top = counts.groupby("artist", sort=False).head(features.MAX_TAGS)
    # `top` is sorted by artist, so each artist's tags are one run of rows; joining the runs
    # directly is ~30x faster than groupby(...).agg("|".join), which runs per group in Python.
    if top.empty:
        return pd.Series(dtype=object)
    artist, tag = top.artist.to_numpy(), top.tag.to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, artist[1:] != artist[:-1]])
    ends = np.r_[starts[1:], len(top)]
    return pd.Series([layout.LIST_SEPARATOR.join(tag[start:end])
                      for start, end in zip(starts, ends, strict=True)],
                     index=artist[starts], dtype=object)


def _read_friends(path: str, users: np.ndarray,
                  dropped: Dict[str, int]) -> Tuple[pd.DataFrame, str]:
    table, encoding = _read_dat(path, ("userID", "friendID"))
    friends = pd.DataFrame({"user_id": _integers(table, path, "userID"),
                            "friend_id": _integers(table, path, "friendID")})
    # Friends without listening data cannot be used by a recommender trained on listens.
    known = friends.user_id.isin(users) & friends.friend_id.isin(users)
    dropped[DROPPED_FRIENDS_OF_UNKNOWN_USERS] = int((~known).sum())
    friends = friends[known.to_numpy()]
    duplicated = friends.duplicated().to_numpy()
    dropped[DROPPED_DUPLICATE_FRIENDS] = int(duplicated.sum())
    friends = friends[~duplicated].sort_values(["user_id", "friend_id"], kind="mergesort")
    return friends, encoding


def _write_csv(table: pd.DataFrame, path: str) -> None:
    # Minimal quoting escapes the commas and quotes in names; "\n" endings on every platform.
    table.to_csv(path, index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL,
                 lineterminator="\n")


def convert(source_dir: str, out_dir: str) -> Conversion:
    """Writes the generic layout of the HetRec Last.fm files in `source_dir` into `out_dir`."""
    def path_of(name: str) -> str:
        return os.path.join(source_dir, name)

    for name in (USER_ARTISTS_FILE, ARTISTS_FILE):
        if not os.path.isfile(path_of(name)):
            raise sources.InputDataError(path_of(name), "missing: a HetRec Last.fm folder needs "
                                         f"{USER_ARTISTS_FILE} and {ARTISTS_FILE}")
    has_tags = os.path.isfile(path_of(TAGS_FILE))
    if has_tags != os.path.isfile(path_of(TAGGED_ARTISTS_FILE)):
        absent = TAGGED_ARTISTS_FILE if has_tags else TAGS_FILE
        raise sources.InputDataError(path_of(absent), f"missing: {TAGS_FILE} and "
                                     f"{TAGGED_ARTISTS_FILE} are used together")

    encodings: Dict[str, str] = {}
    dropped = {DROPPED_TAGS_OF_UNKNOWN_ARTISTS: 0, DROPPED_TAGS_OF_UNKNOWN_TAGS: 0,
               DROPPED_TAGS_WITH_EMPTY_NAMES: 0}
    artist_id, artist_name, encodings[ARTISTS_FILE] = _read_artists(path_of(ARTISTS_FILE))
    listens, encodings[USER_ARTISTS_FILE] = _read_listens(path_of(USER_ARTISTS_FILE), artist_id)
    tags = (_top_tags(path_of(TAGS_FILE), path_of(TAGGED_ARTISTS_FILE), artist_id, dropped,
                      encodings) if has_tags else pd.Series(dtype=object))
    users = listens.user.unique()
    friends = None
    if os.path.isfile(path_of(FRIENDS_FILE)):
        dropped.update({DROPPED_FRIENDS_OF_UNKNOWN_USERS: 0, DROPPED_DUPLICATE_FRIENDS: 0})
        friends, encodings[FRIENDS_FILE] = _read_friends(path_of(FRIENDS_FILE), users, dropped)

    listens = listens.sort_values(["user", "artist"], kind="mergesort")
    _write_csv(pd.DataFrame({
        "user_id": listens.user.astype(str).to_numpy(),
        "item_id": listens.artist.astype(str).to_numpy(),
        "weight": "1.0",
        "plays": listens.plays.to_numpy(),
    }, columns=list(INTERACTION_COLUMNS)), os.path.join(out_dir, layout.INTERACTIONS_FILE))
    order = np.argsort(artist_id, kind="stable")
    _write_csv(pd.DataFrame({
        "item_id": artist_id[order].astype(str),
        "artist": artist_name[order],
        "tags": tags.reindex(artist_id[order]).fillna("").to_numpy(dtype=object),
    }, columns=list(ITEM_COLUMNS)), os.path.join(out_dir, layout.ITEMS_FILE))
    if friends is not None:
        _write_csv(friends.astype(str), os.path.join(out_dir, layout.FRIENDS_FILE))

    return Conversion(
        layout=layout.GENERIC,
        users=len(users),
        items=len(artist_id),
        interactions=len(listens),
        has_timestamps=False,
        dropped=dropped,
        manifest_notes={"licence": LICENCE, "encodings": encodings},
    )
