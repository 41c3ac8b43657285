"""Importers that turn real listening data sets into a folder crossfade reads.

`import_dataset(fmt, source_dir, out_dir)` converts one data set into a layout that
`sources.detect_layout` recognises and writes ``out_dir/manifest.json`` next to it. Formats:

* ``lastfm-hetrec`` (`lastfm_hetrec`): the HetRec 2011 Last.fm 2k tab-separated ``.dat`` files ->
  the ``generic`` layout (``interactions.csv`` without timestamps, ``items.csv``,
  ``friends.csv``).
* ``spotify-history`` (`spotify_history`): Spotify "Extended streaming history" exports
  (``Streaming_History_Audio_*.json``, one or many users) -> the ``simulator`` layout
  (``catalogue.csv``, ``plays/span-YYYYMM/plays.csv``).
* ``csv``: a folder already in the ``generic`` layout (``interactions.csv``
  ``user_id,item_id[,timestamp][,weight]`` and optionally ``items.csv``), validated with the
  pipeline's own readers and copied.

``manifest.json`` is a JSON object with ``format``, ``layout``, ``source_name`` (the source
folder's base name only, no path; null for pseudonymised ``spotify-history``, whose folder names
are user names), ``users``, ``items``, ``interactions``, ``has_timestamps``, ``dropped``
(reason -> rows dropped) plus format-specific entries (for Last.fm: ``licence`` and
``encodings``; for Spotify: ``incognito_plays`` ("dropped"/"kept"), ``usernames``
("pseudonymised"/"verbatim") and ``pseudonym_key_id``, a public fingerprint of the key).

Spotify privacy (``spotify-history`` only; other formats reject these options): plays with
``incognito_mode`` true are dropped and counted unless `keep_incognito`; user names are replaced
by keyed pseudonyms (`pseudonyms`) unless `keep_usernames`. The key lives in `pseudonym_key`,
default `pseudonyms.default_key_path(out_dir)` (``<out_dir>.pseudonym-key``, beside the data and
outside the folder the pipeline reads; a key inside `out_dir` is refused). An existing key file
is reused, so pseudonyms stay stable across imports; otherwise a new random key is written
(mode 0600) only once the import is complete, and removed again if installing it fails.
Last.fm's numeric user ids are already pseudonymous and are kept.

An import is all or nothing: the converter writes into a new hidden sibling folder of
``out_dir``, which replaces ``out_dir`` only once it is complete. A failed import removes its
own folder and leaves an earlier import in ``out_dir`` untouched. Folders are local paths.
Problems in the input are raised as `sources.InputDataError` naming the file, the 1-based data
row (or JSON record) and the field.
"""
import dataclasses
import functools
import json
import os
import shutil
import uuid
from typing import Dict, Optional, Tuple

import pandas as pd

from crossfade.components.listening_data import (
    lastfm_hetrec,
    layout,
    pseudonyms,
    sources,
    spotify_history,
)
from crossfade.components.listening_data.conversion import Conversion, Converter
from crossfade.components.listening_data.layout import MANIFEST_FILE

LASTFM_HETREC = "lastfm-hetrec"
SPOTIFY_HISTORY = "spotify-history"
CSV = "csv"
FORMATS = (LASTFM_HETREC, SPOTIFY_HISTORY, CSV)


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """What an import wrote (also recorded in ``out_dir/manifest.json``)."""

    format: str
    source_name: Optional[str]  # the source folder's base name, as in the manifest
    out_dir: str
    users: int
    items: int
    interactions: int
    has_timestamps: bool
    dropped: Dict[str, int]  # reason -> rows dropped (e.g. "podcast_episodes")
    pseudonym_key: Optional[str] = None  # the key file of pseudonymised user names


def convert_generic_csv(source_dir: str, out_dir: str) -> Conversion:
    """Validates a generic-layout folder with the pipeline's readers and copies it.

    Only ``interactions.csv`` and ``items.csv`` are copied: they are the whole layout. With
    ``items.csv`` every interaction's item must be in it, as the pipeline requires.
    """
    interactions_path = os.path.join(source_dir, layout.INTERACTIONS_FILE)
    items_path = os.path.join(source_dir, layout.ITEMS_FILE)
    if not os.path.isfile(interactions_path):
        raise sources.InputDataError(interactions_path, "missing: the csv format needs "
                                     f"{layout.INTERACTIONS_FILE} [+ {layout.ITEMS_FILE}]")
    has_items = os.path.isfile(items_path)
    catalogue = sources.read_catalogue(items_path) if has_items else None
    plays = sources.read_generic_interactions(
        interactions_path, catalogue.track_id if catalogue is not None else None)
    shutil.copyfile(interactions_path, os.path.join(out_dir, layout.INTERACTIONS_FILE))
    if has_items:
        shutil.copyfile(items_path, os.path.join(out_dir, layout.ITEMS_FILE))
    return Conversion(
        layout=layout.GENERIC,
        users=int(pd.Series(plays.user_id).nunique()),
        items=(len(catalogue) if catalogue is not None
               else int(pd.Series(plays.track_id).nunique())),
        interactions=len(plays),
        has_timestamps=sources.has_timestamps(source_dir, layout.GENERIC),
        dropped={},
    )


def _converters(pseudonym_key: Optional[bytes], keep_incognito: bool) -> Dict[str, Converter]:
    return {
        LASTFM_HETREC: lastfm_hetrec.convert,
        SPOTIFY_HISTORY: functools.partial(spotify_history.convert, pseudonym_key=pseudonym_key,
                                           keep_incognito=keep_incognito),
        CSV: convert_generic_csv,
    }


def _is_within(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _replace_folder(new: str, target: str) -> None:
    """Moves the complete folder `new` to `target`, replacing any folder already there."""
    if not os.path.exists(target):
        os.rename(new, target)
        return
    # Two renames rather than rmtree + rename: the old import is only deleted once the new
    # one is in place, and is put back if the second rename fails.
    previous = f"{new}.previous"
    os.rename(target, previous)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _check_folders(source_dir: str, out_dir: str) -> None:
    if not os.path.isdir(source_dir):
        raise sources.InputDataError(source_dir, "source folder does not exist")
    if _is_within(source_dir, out_dir):
        raise sources.InputDataError(
            out_dir, f"the output folder contains the source folder {source_dir}: replacing it "
            "would delete the source")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise sources.InputDataError(out_dir, "exists and is not a folder")


def _load_key(path: str, out_dir: str) -> Tuple[bytes, bool]:
    """(key, whether it is new) for the key file `path`: read if it exists, else generated.

    A new key is not written here (see `_install_key`). Raises InputDataError naming `path`
    for a key inside `out_dir`, in a missing folder, or unreadable.
    """
    if _is_within(path, out_dir):
        raise sources.InputDataError(path, f"the pseudonym key must not be inside the output "
                                     f"folder {out_dir}: the pipeline reads that folder")
    if not os.path.exists(path):
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise sources.InputDataError(path, "the pseudonym key's folder does not exist")
        return pseudonyms.new_key(), True
    try:
        return pseudonyms.read_key(path), False
    except pseudonyms.PseudonymKeyError as error:
        raise sources.InputDataError(error.path, error.message) from None


def _install_key(path: str, key: bytes) -> None:
    """Writes `key` to `path` (mode 0600) whole or not at all: a hidden sibling, then a rename."""
    folder, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(folder, f".{name}.writing-{uuid.uuid4().hex[:12]}")
    try:
        pseudonyms.write_key(partial, key)
        os.rename(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _source_name(fmt: str, source_dir: str, pseudonymised: bool) -> Optional[str]:
    """The source folder's base name; None for pseudonymised Spotify (it may be a user name)."""
    if fmt == SPOTIFY_HISTORY and pseudonymised:
        return None
    return os.path.basename(os.path.abspath(source_dir))


def _write_manifest(folder: str, summary: ImportSummary, conversion: Conversion) -> None:
    manifest = {
        "format": summary.format,
        "layout": conversion.layout,
        "source_name": summary.source_name,
        "users": summary.users,
        "items": summary.items,
        "interactions": summary.interactions,
        "has_timestamps": summary.has_timestamps,
        "dropped": summary.dropped,
        **conversion.manifest_notes,
    }
    with open(os.path.join(folder, MANIFEST_FILE), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def _key_choice(fmt: str, out_dir: str, keep_incognito: bool, keep_usernames: bool,
                pseudonym_key: Optional[str]) -> Optional[str]:
    """The key file to use (None: names kept); ValueError for Spotify options on another fmt."""
    if fmt != SPOTIFY_HISTORY:
        if keep_incognito or keep_usernames or pseudonym_key is not None:
            raise ValueError("keep_incognito, keep_usernames and pseudonym_key (--keep-incognito,"
                             f" --keep-usernames, --pseudonym-key) apply to {SPOTIFY_HISTORY} "
                             f"only, not {fmt}")
        return None
    if keep_usernames:
        if pseudonym_key is not None:
            raise ValueError("keep_usernames and pseudonym_key exclude each other")
        return None
    return pseudonym_key if pseudonym_key is not None else pseudonyms.default_key_path(out_dir)


def import_dataset(fmt: str, source_dir: str, out_dir: str, *, keep_incognito: bool = False,
                   keep_usernames: bool = False,
                   pseudonym_key: Optional[str] = None) -> ImportSummary:
    """Converts the data set in `source_dir` (format `fmt`, one of FORMATS) into `out_dir`.

    The Spotify options (see the module docstring) are for SPOTIFY_HISTORY only. Raises
    ValueError for an unknown format or misused options and `sources.InputDataError` for
    unusable input or key file; either way nothing is written to `out_dir` or the key file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown data set format {fmt!r}; expected one of {FORMATS}")
    key_path = _key_choice(fmt, out_dir, keep_incognito, keep_usernames, pseudonym_key)
    _check_folders(source_dir, out_dir)
    target = os.path.abspath(out_dir)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    key, new_key = _load_key(key_path, out_dir) if key_path else (None, False)
    # A sibling, so installing it is a rename on one filesystem, not a copy; hidden, so the
    # leftovers of a killed import are not mistaken for data.
    staging = os.path.join(parent, f".{name}.importing-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)
    key_installed = False
    try:
        conversion = _converters(key, keep_incognito)[fmt](source_dir, staging)
        summary = ImportSummary(
            format=fmt, source_name=_source_name(fmt, source_dir, key is not None),
            out_dir=out_dir, users=conversion.users, items=conversion.items,
            interactions=conversion.interactions, has_timestamps=conversion.has_timestamps,
            dropped=dict(conversion.dropped),
            pseudonym_key=os.path.abspath(key_path) if key_path else None)
        _write_manifest(staging, summary, conversion)
        if new_key:
            _install_key(key_path, key)
            key_installed = True
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if key_installed:
            os.remove(key_path)
        raise
    return summary
