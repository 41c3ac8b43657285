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

``manifest.json`` is a JSON object with ``format``, ``layout``, ``source_dir`` (absolute),
``users``, ``items``, ``interactions``, ``has_timestamps``, ``dropped`` (reason -> rows dropped)
plus format-specific entries (for Last.fm: ``licence`` and ``encodings``).

An import is all or nothing: the converter writes into a new hidden sibling folder of
``out_dir``, which replaces ``out_dir`` only once it is complete. A failed import removes its
own folder and leaves an earlier import in ``out_dir`` untouched. Folders are local paths.
Problems in the input are raised as `sources.InputDataError` naming the file, the 1-based data
row (or JSON record) and the field.
"""
import dataclasses
import json
import os
import shutil
import uuid
from typing import Dict

import pandas as pd

from crossfade.components.listening_data import lastfm_hetrec, layout, sources, spotify_history
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
    source_dir: str
    out_dir: str
    users: int
    items: int
    interactions: int
    has_timestamps: bool
    dropped: Dict[str, int]  # reason -> rows dropped (e.g. "podcast_episodes")


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


def _converters() -> Dict[str, Converter]:
    return {
        LASTFM_HETREC: lastfm_hetrec.convert,
        SPOTIFY_HISTORY: spotify_history.convert,
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


def import_dataset(fmt: str, source_dir: str, out_dir: str) -> ImportSummary:
    """Converts the data set in `source_dir` (format `fmt`, one of FORMATS) into `out_dir`.

    Raises ValueError for an unknown format and `sources.InputDataError` for unusable input;
    either way nothing is written to `out_dir`.
    """
    converters = _converters()
    if fmt not in converters:
        raise ValueError(f"unknown data set format {fmt!r}; expected one of {FORMATS}")
    if not os.path.isdir(source_dir):
        raise sources.InputDataError(source_dir, "source folder does not exist")
    if _is_within(source_dir, out_dir):
        raise sources.InputDataError(
            out_dir, f"the output folder contains the source folder {source_dir}: replacing it "
            "would delete the source")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise sources.InputDataError(out_dir, "exists and is not a folder")
    target = os.path.abspath(out_dir)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    # A sibling, so installing it is a rename on one filesystem, not a copy; hidden, so the
    # leftovers of a killed import are not mistaken for data.
    staging = os.path.join(parent, f".{name}.importing-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)
    try:
        conversion = converters[fmt](source_dir, staging)
        summary = ImportSummary(
            format=fmt, source_dir=source_dir, out_dir=out_dir, users=conversion.users,
            items=conversion.items, interactions=conversion.interactions,
            has_timestamps=conversion.has_timestamps, dropped=dict(conversion.dropped))
        manifest = {
            "format": fmt,
            "layout": conversion.layout,
            "source_dir": os.path.abspath(source_dir),
            "users": summary.users,
            "items": summary.items,
            "interactions": summary.interactions,
            "has_timestamps": summary.has_timestamps,
            "dropped": summary.dropped,
            **conversion.manifest_notes,
        }
        with open(os.path.join(staging, MANIFEST_FILE), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
