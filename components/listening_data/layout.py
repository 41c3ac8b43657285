"""The on-disk layouts of the data folders crossfade reads: the one home of their names.

Two layouts (`sources.detect_layout` tells them apart):

* ``simulator``, written by `crossfade generate` (`simulator`) and by the ``spotify-history``
  importer: ``catalogue.csv`` (`CATALOGUE_COLUMNS`) plus one folder per span,
  ``plays/span-NNNN/plays.csv`` (`PLAY_COLUMNS`, the field names of Spotify's "Extended
  streaming history" export). The simulator also writes ``users.csv`` (`USER_COLUMNS`) and the
  bot ground truth ``truth/bots.csv`` (`BOT_COLUMNS`), which the pipeline never reads. Either
  writer may add ``likes.csv`` (`LIKE_COLUMNS`), the tracks listeners saved: the simulator with
  the time of each save, the importer from ``YourLibrary.json`` with ``ts`` empty (unknown).
* ``generic``, your own logs or the ``lastfm-hetrec`` and ``csv`` importers:
  ``interactions.csv`` (``user_id,item_id[,timestamp][,weight]``, timestamps in Unix seconds),
  optionally ``items.csv`` (``item_id`` plus metadata columns) and, from Last.fm,
  ``friends.csv`` (`FRIEND_COLUMNS`).

Either may hold ``manifest.json``, written by `crossfade generate` and `crossfade import`; its
``format`` entry names the generator or the imported data set (`imported_format`).

Only the standard library is imported here, so settings, the CLI and the converters can use
these names without loading TensorFlow, pandas or numpy.
"""
import json
import os

SIMULATOR = "simulator"
GENERIC = "generic"

MANIFEST_FILE = "manifest.json"
# Between the entries of a list field, in either layout (``genres``, ``tags``: ``pop|rock``).
LIST_SEPARATOR = "|"

# The simulator layout.
CATALOGUE_FILE = "catalogue.csv"
USERS_FILE = "users.csv"
PLAYS_DIR = "plays"
PLAYS_FILE = "plays.csv"
SPAN_PREFIX = "span-"
TRUTH_DIR = "truth"
BOTS_FILE = "bots.csv"  # in TRUTH_DIR
# Every plays file of a simulator folder, relative to it (an ExampleGen input pattern).
PLAYS_PATTERN = f"{PLAYS_DIR}/{SPAN_PREFIX}*/*.csv"

PLAY_COLUMNS = (
    "ts",
    "username",
    "platform",
    "ms_played",
    "conn_country",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
)
CATALOGUE_COLUMNS = (
    "track_id",
    "title",
    "artist",
    "album",
    "genres",
    "tags",
    "tempo",
    "energy",
    "danceability",
    "valence",
    "acousticness",
    "loudness",
    "duration_ms",
    "release_date",
)
USER_COLUMNS = ("user_id", "country", "account_type", "platform_mix")
# Saved tracks ("likes") beside the plays; ``ts`` ISO-8601 UTC, or empty when unknown.
LIKES_FILE = "likes.csv"
LIKE_COLUMNS = ("user_id", "track_id", "ts")
BOT_COLUMNS = ("user_id",)

# The generic layout.
INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.csv"
# Friendships, both directions (Last.fm's user_friends.dat; the simulator's friend groups).
FRIENDS_FILE = "friends.csv"
FRIEND_COLUMNS = ("user_id", "friend_id")


def span_name(number: int, digits: int = 4) -> str:
    """The folder name of span `number` under PLAYS_DIR, zero-padded to `digits` digits.

    The simulator numbers its days from ``span-0001``; the spotify-history importer names each
    month ``span-YYYYMM`` (``span-202301``, `digits` 6).
    """
    if number < 0:
        raise ValueError(f"a span number is non-negative, not {number}")
    return f"{SPAN_PREFIX}{number:0{digits}d}"


def imported_format(data_dir: str) -> str:
    """The ``format`` recorded in ``<data_dir>/manifest.json`` ("" without one).

    "" too when the manifest cannot be read, is not a JSON object or has no string ``format``.
    `crossfade import` records the data set's format (e.g. ``lastfm-hetrec``); a simulated
    folder has the simulator's (``crossfade-simulator/1``). A local path: plain `open`.
    """
    try:
        with open(os.path.join(data_dir, MANIFEST_FILE), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return ""
    found = manifest.get("format", "") if isinstance(manifest, dict) else ""
    return found if isinstance(found, str) else ""
