"""Deterministic simulator of a music-streaming service's listening logs.

This is crossfade's embedded default data set. ``generate`` writes a track catalogue, a user
table, one CSV of plays per simulated day (laid out as ExampleGen spans) and the bot ground
truth. Everything is a pure function of ``(preset, seed)``: the same arguments give
byte-identical files on the same platform (numpy version and CPU). The generator is vectorised
with numpy; Python loops run per day, per genre, per session position or per chunk of users,
never per play.

Generative model (what a recommender can learn from the data):

* Tracks, artists and users live in a ``latent_dim``-dimensional taste space. Genres are
  clusters: an artist's vector is its genre centroid plus noise and a track's vector is its
  artist's vector plus noise. Users mix one to three genre centroids plus personal noise.
* Track popularity is Zipf-like (``popularity ~ rank ** -zipf_exponent``).
* A user's steady-state choice distribution is a truncated softmax over a personal candidate
  pool: ``p(track) ∝ popularity ** popularity_weight * exp(affinity / taste_temperature)``, where
  ``affinity`` is the user-track dot product. The pool holds the best ``pool_per_genre`` tracks
  of each of the user's three genre slots plus the top tracks of a few favourite artists, which
  get an extra bonus (artist loyalty and repeat listening).
* Plays come in sessions. A session starts at an hour drawn from a per-user daily rhythm and a
  global diurnal curve (local time, converted to UTC by the user's country), on a platform drawn
  from the user's ``platform_mix``. Inside a session the next track is drawn from one of several
  channels: the user's pool, a recent release of one of the user's genres, a globally popular
  track, or - for coherence between consecutive plays - another track by the previous track's
  artist, the next track of its album, or one of its latent-space neighbours. Pool draws are
  also nudged towards an energy level that suits the local hour (calm at night, energetic at
  weekend nights), so time context carries a little signal.
* Low-affinity plays are skipped more often (short ``ms_played``, ``reason_end`` ``fwdbtn``,
  ``skipped`` true); the rest mostly play to the end (``trackdone``), and some stop part way
  (``endplay``/``logout``).
* ``new_release_share`` of the tracks are released on a day inside the simulated period: they
  are never played before that day and get a "new releases" boost that decays over two weeks.
* ``bot_share`` of the accounts are streaming-fraud bots: they loop a handful of obscure tracks
  in bursts every hour of the day, each play lasting just over the 30-second royalty threshold
  (30,000-31,500 ms), never skipped. A few heavy human listeners make bot filtering
  non-trivial. Bots are listed in ``truth/bots.csv``, which the training pipeline never reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import (
    BOT_COLUMNS,
    BOTS_FILE,
    CATALOGUE_COLUMNS,
    CATALOGUE_FILE,
    LIST_SEPARATOR,
    MANIFEST_FILE,
    PLAY_COLUMNS,
    PLAYS_DIR,
    PLAYS_FILE,
    SPAN_PREFIX,
    TRUTH_DIR,
    USER_COLUMNS,
    USERS_FILE,
    span_name,
)

FORMAT = "crossfade-simulator/1"  # the "format" of the manifest

PLATFORMS = ("android", "ios", "desktop", "web", "smart_speaker")
_ANDROID, _IOS, _DESKTOP, _WEB, _SPEAKER = range(len(PLATFORMS))

REASONS_START = ("appload", "clickrow", "playbtn", "remote", "trackdone", "fwdbtn", "backbtn")
REASONS_END = ("trackdone", "fwdbtn", "endplay", "logout", "backbtn")
_RS = {name: i for i, name in enumerate(REASONS_START)}
_RE = {name: i for i, name in enumerate(REASONS_END)}

#: ``ms_played`` below this is a skip in royalty terms; bots stream just past it.
SKIP_THRESHOLD_MS = 30_000
BOT_MS_RANGE = (30_000, 31_500)

GENRES = (
    "pop", "rock", "hip hop", "r&b", "electronic", "house", "techno", "indie", "folk", "country",
    "jazz", "classical", "metal", "punk", "reggae", "latin", "k-pop", "soul", "blues", "ambient",
)
# Share of artists per genre (normalised below).
_GENRE_SHARE = np.array(
    [12, 9, 11, 6, 6, 5, 4, 7, 4, 5, 4, 3, 4, 3, 3, 6, 4, 3, 2, 3], dtype=np.float64
)
_GENRE_SHARE /= _GENRE_SHARE.sum()
# Per genre: tempo (BPM), energy, danceability, valence, acousticness, mean duration (s).
_GENRE_AUDIO = np.array(
    [
        (118, 0.68, 0.68, 0.55, 0.18, 205), (126, 0.78, 0.50, 0.48, 0.12, 235),
        (98, 0.65, 0.78, 0.48, 0.14, 210), (100, 0.55, 0.68, 0.50, 0.25, 220),
        (124, 0.78, 0.64, 0.42, 0.06, 250), (124, 0.80, 0.78, 0.55, 0.04, 330),
        (130, 0.85, 0.70, 0.30, 0.03, 400), (120, 0.60, 0.55, 0.45, 0.30, 225),
        (110, 0.38, 0.50, 0.45, 0.72, 220), (118, 0.62, 0.58, 0.58, 0.30, 200),
        (110, 0.38, 0.55, 0.52, 0.65, 320), (95, 0.18, 0.30, 0.30, 0.92, 420),
        (135, 0.92, 0.40, 0.30, 0.02, 280), (160, 0.90, 0.45, 0.50, 0.03, 160),
        (90, 0.60, 0.75, 0.70, 0.20, 230), (105, 0.75, 0.76, 0.68, 0.18, 210),
        (122, 0.78, 0.70, 0.60, 0.10, 205), (104, 0.50, 0.62, 0.60, 0.35, 215),
        (100, 0.50, 0.50, 0.45, 0.45, 260), (85, 0.15, 0.25, 0.20, 0.85, 380),
    ],
    dtype=np.float64,
)
_GENRE_TAGS = (
    ("catchy", "chart", "radio", "synth-pop", "hook", "bubblegum", "dance-pop", "singalong"),
    ("guitar", "riff", "anthem", "arena", "distortion", "drums", "classic-rock", "grunge"),
    ("rap", "beats", "trap", "boom-bap", "bars", "freestyle", "808", "flow"),
    ("smooth", "slow-jam", "groove", "falsetto", "neo-soul", "sensual", "contemporary",
     "harmonies"),
    ("synth", "edm", "drop", "bass", "glitch", "idm", "synthwave", "electro"),
    ("four-on-the-floor", "deep-house", "disco", "club", "piano-house", "vocal-house",
     "tech-house", "garage"),
    ("warehouse", "minimal", "berlin", "acid", "hypnotic", "industrial", "rave", "modular"),
    ("lo-fi", "bedroom-pop", "jangle", "shoegaze", "dream-pop", "alternative", "diy", "indie-rock"),
    ("acoustic-guitar", "storytelling", "banjo", "singer-songwriter", "traditional", "harmonica",
     "campfire", "americana"),
    ("twang", "honky-tonk", "pickup-truck", "nashville", "steel-guitar", "bluegrass", "outlaw",
     "line-dance"),
    ("swing", "bebop", "saxophone", "improvisation", "trumpet", "big-band", "smooth-jazz",
     "standards"),
    ("orchestral", "symphony", "piano", "strings", "baroque", "opera", "chamber", "sonata"),
    ("heavy", "thrash", "doom", "shred", "double-bass", "growl", "headbang", "breakdown"),
    ("fast", "raw", "hardcore", "pogo", "three-chord", "skate", "riot", "pop-punk"),
    ("dub", "roots", "skank", "dancehall", "island", "offbeat", "rocksteady", "ska"),
    ("reggaeton", "salsa", "bachata", "cumbia", "perreo", "tropical", "latin-pop", "dembow"),
    ("idol", "choreography", "comeback", "hallyu", "girl-group", "boy-band", "k-ballad", "fandom"),
    ("motown", "gospel", "funk", "brass", "vintage", "northern-soul", "sweet-soul", "horns"),
    ("delta", "slide-guitar", "twelve-bar", "chicago-blues", "juke-joint", "electric-blues",
     "blue-notes", "crossroads"),
    ("drone", "atmospheric", "meditation", "soundscape", "chill", "sleep", "field-recording",
     "ethereal"),
)
# Mood and lyric keywords; which ones a track gets depends on its latent vector.
_MOOD_TAGS = (
    "love", "heartbreak", "summer", "night", "party", "dance", "rain", "road", "city", "dreams",
    "freedom", "lonely", "home", "fire", "ocean", "sunset", "midnight", "memories", "youth",
    "money", "hustle", "faith", "rebellion", "friendship", "nostalgia", "euphoric", "melancholic",
    "uplifting", "dark", "energetic", "mellow", "romantic", "angry", "hopeful", "sad", "happy",
    "workout", "focus", "study", "driving", "morning", "late-night", "rainy-day", "roadtrip",
    "wedding", "breakup", "healing", "confidence", "celebration", "winter", "spring", "autumn",
    "stars", "moon", "sun", "heart", "tears", "kiss", "goodbye", "forever", "tonight", "weekend",
    "highway", "neon", "gold", "diamonds", "ghost", "angel", "devil", "paradise", "storm",
    "thunder", "river", "mountain", "desert", "wild", "young", "crazy", "alone", "together",
    "lost", "running", "falling", "flying", "burning", "dreaming", "waiting", "dancing", "crying",
    "smile", "revenge", "loyalty", "street", "family", "hometown", "childhood", "escape",
    "rebirth", "chaos", "calm", "cosmic", "velvet", "electric", "golden-hour", "bittersweet",
    "introspective", "cinematic", "groovy", "dreamy", "gritty", "playful", "spiritual", "vibes",
    "nightlife", "daydream", "sunrise", "seaside", "rooftop", "heat", "ice", "shadows", "mirror",
)
TAG_VOCABULARY = tuple(t for tags in _GENRE_TAGS for t in tags) + _MOOD_TAGS
assert len(set(TAG_VOCABULARY)) == len(TAG_VOCABULARY), "tag vocabulary must be unique"
assert len(_GENRE_TAGS) == len(GENRES) == len(_GENRE_AUDIO) == len(_GENRE_SHARE)

# code, UTC offset (h), share of users, iOS share of phones, premium share.
_COUNTRIES = (
    ("US", -5.0, 22, 0.55, 0.50), ("GB", 0.0, 8, 0.50, 0.50), ("DE", 1.0, 8, 0.40, 0.50),
    ("FR", 1.0, 5, 0.35, 0.45), ("SE", 1.0, 3, 0.50, 0.60), ("NL", 1.0, 3, 0.45, 0.55),
    ("ES", 1.0, 4, 0.30, 0.40), ("IT", 1.0, 3, 0.30, 0.40), ("PL", 1.0, 3, 0.20, 0.35),
    ("BR", -3.0, 10, 0.15, 0.30), ("MX", -6.0, 7, 0.20, 0.30), ("CA", -5.0, 4, 0.50, 0.50),
    ("JP", 9.0, 4, 0.65, 0.40), ("IN", 5.5, 6, 0.10, 0.20), ("AU", 10.0, 3, 0.50, 0.55),
    ("ID", 7.0, 3, 0.15, 0.25), ("KR", 9.0, 2, 0.40, 0.45), ("AR", -3.0, 2, 0.20, 0.30),
    ("PH", 8.0, 2, 0.20, 0.25), ("TR", 3.0, 2, 0.25, 0.30),
)
_COUNTRY_CODES = np.array([c[0] for c in _COUNTRIES], dtype=object)
_COUNTRY_OFFSET_S = np.array([c[1] * 3600 for c in _COUNTRIES])
_COUNTRY_SHARE = np.array([c[2] for c in _COUNTRIES], dtype=np.float64)
_COUNTRY_SHARE /= _COUNTRY_SHARE.sum()
_COUNTRY_IOS = np.array([c[3] for c in _COUNTRIES])
_COUNTRY_PREMIUM = np.array([c[4] for c in _COUNTRIES])

# Share of sessions started in each local hour (weekday, weekend).
_DIURNAL = np.array(
    [
        [1.2, 0.7, 0.4, 0.25, 0.2, 0.35, 1.0, 2.2, 3.0, 2.6, 2.2, 2.2,
         2.5, 2.4, 2.3, 2.4, 2.7, 3.2, 3.4, 3.4, 3.3, 3.0, 2.5, 1.8],
        [2.0, 1.4, 0.9, 0.5, 0.3, 0.3, 0.5, 0.9, 1.5, 2.2, 2.7, 3.0,
         3.1, 3.0, 2.9, 2.9, 3.0, 3.2, 3.3, 3.4, 3.5, 3.4, 3.0, 2.5],
    ]
)
_DIURNAL /= _DIURNAL.sum(axis=1, keepdims=True)
# Session-rate multiplier per weekday, Monday first.
_WEEKDAY_RATE = np.array([0.97, 0.95, 0.97, 1.0, 1.08, 1.12, 1.02])

_TITLE_WORDS = (
    "Love", "Night", "Summer", "Heart", "Fire", "Dream", "Light", "Rain", "City", "Road", "Gold",
    "Stars", "Moon", "Sun", "Ocean", "River", "Ghost", "Angel", "Paradise", "Storm", "Thunder",
    "Midnight", "Sunset", "Neon", "Velvet", "Diamond", "Shadow", "Mirror", "Echo", "Wild",
    "Young", "Forever", "Tonight", "Home", "Highway", "Kiss", "Tears", "Smile", "Escape",
    "Running", "Falling", "Flying", "Burning", "Dancing", "Waiting", "Lost", "Found", "Blue",
    "Red", "Golden", "Silver", "Electric", "Cosmic", "Sweet", "Bitter", "Lonely", "Crazy",
    "Secret", "Silent", "Broken", "Endless", "Hollow", "Northern", "Southern", "Paper", "Glass",
    "Honey", "Sugar", "Cherry", "Lemon", "Wolf", "Tiger", "Bird", "Butterfly", "Rose", "Garden",
    "Island", "Desert", "Mountain", "Valley", "Window", "Door", "Train", "Radio", "Satellite",
    "Rocket", "Heaven", "Hell", "Fever", "Poison", "Magic", "Gravity", "Motion", "Signal",
    "Static", "Wave", "Tide", "Thunderbird", "Carousel", "Lullaby", "Serenade", "Anthem",
    "Ballad", "Parade", "Riot", "Ritual", "Vision", "Memory", "Promise", "Letter", "Story",
    "Kingdom", "Empire", "Horizon", "Sky", "Cloud", "Snow", "Winter", "Spring", "Autumn",
    "Morning", "Evening", "Weekend", "Holiday", "Dust", "Smoke", "Stone", "Iron", "Velour",
    "Caravan", "Harbor", "Lantern", "Compass", "Atlas", "Orbit", "Pulse", "Bloom", "Ember",
)
_FIRST_NAMES = (
    "Ava", "Leo", "Maya", "Noah", "Luna", "Kai", "Zara", "Milo", "Nina", "Theo", "Iris", "Jude",
    "Lola", "Finn", "Cleo", "Omar", "Rosa", "Ezra", "Mae", "Hugo", "Ines", "Felix", "Yara",
    "Arlo", "Sofia", "Mateo", "Hana", "Jin", "Amara", "Diego", "Elsa", "Rafael", "Priya",
    "Tomas", "Lena", "Marcus", "Alma", "Victor", "June", "Santi",
)
_LAST_NAMES = (
    "Rivers", "Stone", "Vega", "Moreau", "Kim", "Okafor", "Lindqvist", "Costa", "Nakamura",
    "Hart", "Blake", "Silva", "Novak", "Reyes", "Fischer", "Quinn", "Marlowe", "Santos", "Lane",
    "Hayes", "Ibarra", "Park", "Dubois", "Bennett", "Castillo", "Frost", "Wilde", "Mendes",
    "Sato", "Keller", "Rossi", "Adeyemi", "Holm", "Cruz", "Everett", "Lopez", "Yamada",
    "Schwarz", "Ortega", "Bloom",
)
_BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
_BASE36 = _BASE62[:36].copy()
_BASE36[10:] = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


@dataclass(frozen=True)
class SimulatorPreset:
    """Size and behaviour knobs of one simulated service.

    The first block sets the scale; the rest shape the behaviour and have defaults that make
    the taste structure clearly learnable.
    """

    name: str
    num_users: int
    num_tracks: int
    num_artists: int
    num_days: int
    #: Mean sessions per (human) user per day; individual rates are log-normal around it.
    sessions_per_user_day: float
    #: Mean plays per session (geometric length).
    plays_per_session: float
    #: Fraction of accounts that are streaming bots.
    bot_share: float
    #: Fraction of tracks released on a day inside the simulated period.
    new_release_share: float
    start_date: str = "2024-03-01"
    latent_dim: int = 16
    #: Affinity temperature of the choice softmax; lower means more personal listening.
    taste_temperature: float = 0.08
    #: Per-dimension sd of a user's personal taste around its genre mix.
    taste_noise: float = 0.3
    #: Exponent of the popularity prior in the choice probability.
    popularity_weight: float = 0.5
    #: Global popularity ~ rank ** -zipf_exponent.
    zipf_exponent: float = 0.9
    #: Candidates per genre slot in a user's personal pool (3 slots per user).
    pool_per_genre: int = 80
    #: Mean number of favourite artists per user (at most 6).
    favourite_artists: float = 3.0
    #: Log-weight bonus of a favourite artist's tracks.
    favourite_bonus: float = 1.5
    #: Share of human accounts that are heavy listeners (many long sessions, night included).
    heavy_listener_share: float = 0.01
    #: Mean extra bot plays per hour of the day (each hour has at least one burst play).
    bot_plays_per_hour: float = 0.9
    #: Base log-odds of a skip for an average-affinity track.
    skip_bias: float = 0.3


PRESETS: dict[str, SimulatorPreset] = {
    p.name: p
    for p in (
        SimulatorPreset(
            name="tiny", num_users=300, num_tracks=1_000, num_artists=150, num_days=14,
            sessions_per_user_day=0.8, plays_per_session=8.0, bot_share=0.01,
            new_release_share=0.03, pool_per_genre=40,
            # A 1,000-track catalogue makes the global top 50 strong; sharper taste and a
            # weaker popularity prior keep personalisation clearly ahead.
            taste_temperature=0.1, popularity_weight=0.4,
        ),
        SimulatorPreset(
            name="default", num_users=6_000, num_tracks=20_000, num_artists=2_500, num_days=28,
            sessions_per_user_day=0.29, plays_per_session=7.5, bot_share=0.01,
            new_release_share=0.02,
        ),
        SimulatorPreset(
            name="large", num_users=100_000, num_tracks=100_000, num_artists=12_500,
            num_days=28, sessions_per_user_day=0.45, plays_per_session=8.0, bot_share=0.01,
            new_release_share=0.02,
        ),
    )
}


@dataclass(frozen=True)
class SimulationSummary:
    """What ``generate`` wrote: where, from which preset and seed, and how much."""

    out_dir: str
    preset: str
    seed: int
    num_users: int
    num_bots: int
    num_tracks: int
    num_plays: int
    num_bot_plays: int
    num_days: int


# --------------------------------------------------------------------------------------------
# Small vectorised helpers


def _rng(seed: int, *stream: int) -> np.random.Generator:
    # One independent stream per purpose (and per day), so that changing how one part is
    # computed never shifts the random numbers of another.
    return np.random.default_rng([seed, *stream])


def _random_ids(
    rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray,
    first: "np.ndarray | None" = None,
) -> np.ndarray:
    """``n`` unique random strings of ``length`` characters (object array).

    Characters come from ``alphabet`` (ASCII codes), the first one from ``first`` if given.
    """
    lead = alphabet if first is None else first

    def draw(k: int) -> np.ndarray:
        codes = alphabet[rng.integers(0, len(alphabet), size=(k, length))]
        codes[:, 0] = lead[rng.integers(0, len(lead), size=k)]
        return codes.view(f"S{length}").ravel()

    ids = draw(n)
    while True:
        _, keep = np.unique(ids, return_index=True)
        if len(keep) == n:
            break
        dup = np.setdiff1d(np.arange(n), keep)
        ids[dup] = draw(len(dup))
    return ids.astype(str).astype(object)


def _row_cdf(weights: np.ndarray) -> np.ndarray:
    """Flat, offset inverse-CDF table for sampling one column per row of ``weights``.

    Row ``i`` occupies values in ``[i, i + 1]``, so ``_sample_rows`` can serve many rows with a
    single ``searchsorted``. Every row needs a positive total.
    """
    cdf = np.cumsum(weights, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    cdf += np.arange(len(weights), dtype=np.float64)[:, None]
    return cdf.ravel()


def _sample_rows(cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column index drawn from row ``rows[i]`` of a ``_row_cdf`` table with uniforms ``u``."""
    pos = np.searchsorted(cdf, rows + u, side="right")
    # Guards against rounding at a row's upper edge.
    return np.minimum(pos - rows * width, width - 1)


def _group_cdf(weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Offset inverse-CDF over items sorted by ``group`` (group ``g`` spans ``[g, g + 1]``)."""
    csum = np.cumsum(weights, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    before = np.repeat(np.r_[0.0, csum[starts[1:] - 1]], ends - starts)
    total = np.repeat(csum[ends - 1], ends - starts) - before
    return group + (csum - before) / total


def _sample_groups(
    cdf: np.ndarray, group_start: np.ndarray, group_size: np.ndarray, groups: np.ndarray,
    u: np.ndarray,
) -> np.ndarray:
    """Item index drawn inside ``groups[i]`` of a ``_group_cdf`` table with uniforms ``u``."""
    pos = np.searchsorted(cdf, groups + u, side="right")
    lo = group_start[groups]
    return np.clip(pos, lo, lo + group_size[groups] - 1)


def _csv_field(values: np.ndarray) -> np.ndarray:
    """CSV-quote strings that need it (RFC 4180), as an object array."""
    out = np.array(values, dtype=object)
    for i, s in enumerate(out):
        if any(c in s for c in ',"\n\r'):
            out[i] = '"' + s.replace('"', '""') + '"'
    return out


def _join_columns(columns: list[np.ndarray]) -> np.ndarray:
    row = columns[0]
    for col in columns[1:]:
        row = row + "," + col
    return row


def _format_weight(x: float) -> str:
    s = f"{x:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


# --------------------------------------------------------------------------------------------
# Catalogue


@dataclass
class _Catalogue:
    track_id: np.ndarray          # object, spotify:track:...
    title: np.ndarray             # object
    artist_name: np.ndarray       # object, per artist
    album_name: np.ndarray        # object, per album
    track_artist: np.ndarray      # int, tracks are sorted artist-major then album
    track_album: np.ndarray
    genre: np.ndarray             # primary genre per track
    vec: np.ndarray               # (T, D) float32 latent vectors
    log_pop: np.ndarray           # log popularity prior (Zipf by rank)
    release_day: np.ndarray       # day index relative to start; < 0 is back catalogue
    duration_ms: np.ndarray
    energy: np.ndarray
    artist_start: np.ndarray
    artist_size: np.ndarray
    artist_cdf: np.ndarray        # popularity-weighted track choice within an artist
    artist_by_pop: np.ndarray     # track indices, artist-major, most popular first
    album_start: np.ndarray
    album_size: np.ndarray
    centroids: np.ndarray
    frame: pd.DataFrame           # catalogue.csv content
    csv_fragment: np.ndarray      # "title,artist,album,uri" quoted, per track


def _orthogonal(noise: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``noise`` minus its component along the unit rows of ``direction``.

    Deviations from a genre centroid are kept orthogonal to it: otherwise every fan of a genre
    would agree on which of its tracks are best, and taste would collapse into popularity.
    """
    return noise - np.sum(noise * direction, axis=1, keepdims=True) * direction


def _make_names(rng: np.random.Generator, n: int, max_words: int) -> list[str]:
    words = np.array(_TITLE_WORDS, dtype=object)
    k = rng.integers(1, max_words + 1, size=n)
    picks = rng.integers(0, len(words), size=(n, max_words))
    return [" ".join(words[picks[i, : k[i]]]) for i in range(n)]


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)
    w1 = rng.integers(0, len(_TITLE_WORDS), n)
    w2 = rng.integers(0, len(_TITLE_WORDS), n)
    style = rng.choice(5, size=n, p=[0.35, 0.25, 0.15, 0.15, 0.10])
    names = []
    for i in range(n):
        s = style[i]
        if s == 0:
            names.append(f"{_FIRST_NAMES[first[i]]} {_LAST_NAMES[last[i]]}")
        elif s == 1:
            names.append(f"The {_TITLE_WORDS[w1[i]]} {_TITLE_WORDS[w2[i]]}s")
        elif s == 2:
            names.append(f"{_TITLE_WORDS[w1[i]]} {_TITLE_WORDS[w2[i]]}")
        elif s == 3:
            names.append(f"{_FIRST_NAMES[first[i]]} & the {_TITLE_WORDS[w1[i]]}s")
        else:
            names.append(f"DJ {_TITLE_WORDS[w1[i]]}")
    # Disambiguate rare collisions so that an artist name identifies an artist.
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            seen[name] += 1
            names[i] = f"{name} {seen[name]}"
        else:
            seen[name] = 1
    return names


def _build_catalogue(p: SimulatorPreset, seed: int, start: dt.date) -> _Catalogue:
    rng = _rng(seed, 1)
    n_genres, dim, n_artists, n_tracks = len(GENRES), p.latent_dim, p.num_artists, p.num_tracks

    centroids = rng.standard_normal((n_genres, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    related = np.argsort(-(centroids @ centroids.T), axis=1)[:, 1:4]

    artist_genre = rng.choice(n_genres, size=n_artists, p=_GENRE_SHARE)
    artist_vec = centroids[artist_genre] + _orthogonal(
        rng.normal(0.0, 0.16, (n_artists, dim)), centroids[artist_genre]
    )
    artist_raw_pop = rng.normal(0.0, 1.0, n_artists)

    # Every artist has at least one track; more popular artists tend to have more.
    w = np.exp(0.6 * artist_raw_pop)
    counts = 1 + rng.multinomial(n_tracks - n_artists, w / w.sum())
    track_artist = np.repeat(np.arange(n_artists), counts)
    artist_start = np.r_[0, np.cumsum(counts)[:-1]]
    pos_in_artist = np.arange(n_tracks) - artist_start[track_artist]
    # Singles, EPs and LPs: an artist's tracks are cut into albums of one typical length.
    album_len = rng.choice(
        np.array([1, 4, 6, 10, 12, 14]), size=n_artists, p=[0.2, 0.15, 0.15, 0.2, 0.15, 0.15]
    )
    new_album = pos_in_artist % album_len[track_artist] == 0
    track_album = np.cumsum(new_album) - 1
    album_start = np.flatnonzero(new_album)
    album_size = np.diff(np.r_[album_start, n_tracks])
    n_albums = len(album_start)

    genre = artist_genre[track_artist]
    vec = artist_vec[track_artist] + _orthogonal(
        rng.normal(0.0, 0.12, (n_tracks, dim)), centroids[genre]
    )
    vec = vec.astype(np.float32)

    # Zipf by rank of a latent "buzz" that mixes artist fame and track-level luck.
    raw = artist_raw_pop[track_artist] + rng.normal(0.0, 0.8, n_tracks)
    rank = np.empty(n_tracks, dtype=np.int64)
    rank[np.argsort(-raw, kind="stable")] = np.arange(n_tracks)
    log_pop = -p.zipf_exponent * np.log(rank + 3.0)
    log_pop -= log_pop.max()

    # Release dates are per album: back catalogue skews recent; a share of albums is new.
    album_day = -(1 + np.minimum(rng.exponential(4 * 365.0, n_albums), 60 * 365)).astype(np.int64)
    if p.num_days >= 2 and p.new_release_share > 0:
        order = rng.permutation(n_albums)
        covered = np.cumsum(album_size[order])
        n_new = int(np.searchsorted(covered, p.new_release_share * n_tracks)) + 1
        n_new = min(n_new, n_albums - 1)
        new_albums = order[:n_new]
        album_day[new_albums] = rng.integers(1, p.num_days, size=n_new)
    release_day = album_day[track_album]

    # Genres are an artist property: primary plus up to two related genres.
    n_extra = rng.choice(3, size=n_artists, p=[0.45, 0.4, 0.15])
    extra = rng.permuted(related[artist_genre], axis=1)[:, :2]
    extra = np.where(np.arange(2)[None, :] < n_extra[:, None], extra, -1)
    artist_genres_str = [
        LIST_SEPARATOR.join(GENRES[g] for g in (artist_genre[a], *extra[a]) if g >= 0)
        for a in range(n_artists)
    ]

    # Tags: Gumbel top-k over logits that favour the track's genres and the mood keywords
    # aligned with its latent vector, so that content features predict taste.
    n_gt = sum(len(t) for t in _GENRE_TAGS)
    tag_dir = rng.standard_normal((len(_MOOD_TAGS), dim)).astype(np.float32)
    tag_dir /= np.linalg.norm(tag_dir, axis=1, keepdims=True)
    k_tags = rng.integers(2, 9, size=n_tracks)
    tags_str: list[str] = []
    vocab = np.array(TAG_VOCABULARY, dtype=object)
    chunk = 20_000
    for lo in range(0, n_tracks, chunk):
        hi = min(n_tracks, lo + chunk)
        n = hi - lo
        logits = np.full((n, len(TAG_VOCABULARY)), -4.0, dtype=np.float32)
        gblock = (genre[lo:hi, None] * 8 + np.arange(8)[None, :])
        np.put_along_axis(logits, gblock, 2.0, axis=1)
        for j in range(2):
            eg = extra[track_artist[lo:hi], j]
            has = eg >= 0
            eblock = eg[has, None] * 8 + np.arange(8)[None, :]
            sub = logits[has]
            np.put_along_axis(sub, eblock, 0.8, axis=1)
            logits[has] = sub
        v = vec[lo:hi] / np.linalg.norm(vec[lo:hi], axis=1, keepdims=True)
        logits[:, n_gt:] = 6.0 * (v @ tag_dir.T)
        logits += rng.gumbel(size=logits.shape).astype(np.float32)
        top = np.argsort(-logits, axis=1)[:, :8]
        for i in range(n):
            tags_str.append(LIST_SEPARATOR.join(vocab[top[i, : k_tags[lo + i]]]))

    # Audio descriptors: genre profile + a within-genre latent direction + noise.
    prof = _GENRE_AUDIO[genre]
    resid = vec - centroids[genre]
    proj = resid @ rng.standard_normal((dim, 4)).astype(np.float32)
    proj /= proj.std(axis=0, keepdims=True) + 1e-9
    noise = rng.standard_normal((n_tracks, 6))
    energy = np.clip(prof[:, 1] + 0.10 * proj[:, 0] + 0.07 * noise[:, 0], 0.0, 1.0)
    dance = np.clip(prof[:, 2] + 0.08 * proj[:, 1] + 0.07 * noise[:, 1], 0.0, 1.0)
    valence = np.clip(prof[:, 3] + 0.12 * proj[:, 2] + 0.10 * noise[:, 2], 0.0, 1.0)
    acoustic = np.clip(
        prof[:, 4] - 0.25 * (energy - prof[:, 1]) + 0.08 * noise[:, 3], 0.0, 1.0
    )
    tempo = np.clip(prof[:, 0] * np.exp(0.06 * proj[:, 3] + 0.08 * noise[:, 4]), 60.0, 200.0)
    loudness = np.clip(-16.0 + 13.0 * energy + 1.5 * noise[:, 5], -30.0, 0.0)
    duration_ms = np.clip(
        prof[:, 5] * 1000.0 * np.exp(rng.normal(0.0, 0.22, n_tracks)), 60_000, 1_200_000
    ).astype(np.int64)

    track_id = "spotify:track:" + _random_ids(rng, n_tracks, 22, _BASE62)
    titles = np.array(_make_names(rng, n_tracks, 4), dtype=object)
    feat = rng.random(n_tracks) < 0.08
    feat_artist = rng.integers(0, n_artists, n_tracks)
    artist_name = np.array(_artist_names(rng, n_artists), dtype=object)
    titles[feat] = titles[feat] + " (feat. " + artist_name[feat_artist[feat]] + ")"
    part = rng.random(n_tracks) < 0.03
    titles[part] = titles[part] + ", Pt. 2"
    album_name = np.array(_make_names(rng, n_albums, 3), dtype=object)
    single = album_size == 1
    album_name[single] = titles[album_start[single]] + " - Single"
    live = (~single) & (rng.random(n_albums) < 0.05)
    album_name[live] = album_name[live] + ", Live"

    first_day = int(album_day.min())
    release_dates = np.array(
        [(start + dt.timedelta(days=d)).isoformat() for d in range(first_day, p.num_days)],
        dtype=object,
    )[release_day - first_day]

    def fmt(x: np.ndarray, spec: str) -> np.ndarray:
        return np.char.mod(spec, x).astype(object)

    frame = pd.DataFrame(
        {
            "track_id": track_id,
            "title": titles,
            "artist": artist_name[track_artist],
            "album": album_name[track_album],
            "genres": np.array(artist_genres_str, dtype=object)[track_artist],
            "tags": np.array(tags_str, dtype=object),
            "tempo": fmt(tempo, "%.3f"),
            "energy": fmt(energy, "%.3f"),
            "danceability": fmt(dance, "%.3f"),
            "valence": fmt(valence, "%.3f"),
            "acousticness": fmt(acoustic, "%.3f"),
            "loudness": fmt(loudness, "%.2f"),
            "duration_ms": duration_ms,
            "release_date": release_dates,
        },
        columns=list(CATALOGUE_COLUMNS),
    )
    csv_fragment = _join_columns(
        [
            _csv_field(titles),
            _csv_field(artist_name)[track_artist],
            _csv_field(album_name)[track_album],
            track_id,
        ]
    )

    within = np.exp(log_pop)
    artist_cdf = _group_cdf(within, track_artist)
    artist_by_pop = np.lexsort((-log_pop, track_artist))
    return _Catalogue(
        track_id=track_id, title=titles, artist_name=artist_name, album_name=album_name,
        track_artist=track_artist, track_album=track_album, genre=genre, vec=vec,
        log_pop=log_pop, release_day=release_day, duration_ms=duration_ms, energy=energy,
        artist_start=artist_start, artist_size=counts, artist_cdf=artist_cdf,
        artist_by_pop=artist_by_pop, album_start=album_start, album_size=album_size,
        centroids=centroids, frame=frame, csv_fragment=csv_fragment,
    )


def _neighbours(cat: _Catalogue, m: int = 10) -> np.ndarray:
    """Each track's ``m`` nearest same-genre tracks by cosine similarity (self excluded)."""
    n_tracks = len(cat.genre)
    out = np.empty((n_tracks, m), dtype=np.int64)
    vn = cat.vec / np.linalg.norm(cat.vec, axis=1, keepdims=True)
    for g in range(len(GENRES)):
        members = np.flatnonzero(cat.genre == g)
        n = len(members)
        if n == 0:
            continue
        if n == 1:
            out[members] = members[0]
            continue
        k = min(m, n - 1)
        for lo in range(0, n, 2048):
            rows = members[lo : lo + 2048]
            sim = vn[rows] @ vn[members].T
            sim[np.arange(len(rows)), np.arange(lo, lo + len(rows))] = -np.inf
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            # Repeats fill the list when a genre has fewer than m + 1 tracks.
            out[rows] = members[top[:, np.arange(m) % k]]
    return out


# --------------------------------------------------------------------------------------------
# Users


@dataclass
class _Users:
    user_id: np.ndarray           # object
    country: np.ndarray           # index into _COUNTRIES
    premium: np.ndarray           # bool
    platform_cdf: np.ndarray      # (U, 5) cumulative platform mix
    vec: np.ndarray               # (U, D) float32
    slots: np.ndarray             # (U, 3) genre slots
    slot_weight: np.ndarray       # (U, 3)
    rate: np.ndarray              # sessions per day
    peak_hour: np.ndarray
    hour_spread: np.ndarray
    session_len: np.ndarray       # mean plays per session
    is_bot: np.ndarray
    bots: np.ndarray              # indices
    humans: np.ndarray            # indices
    frame: pd.DataFrame


def _build_users(p: SimulatorPreset, seed: int, cat: _Catalogue) -> _Users:
    rng = _rng(seed, 2)
    n_users, dim, n_genres = p.num_users, p.latent_dim, len(GENRES)

    country = rng.choice(len(_COUNTRIES), size=n_users, p=_COUNTRY_SHARE)
    premium = rng.random(n_users) < _COUNTRY_PREMIUM[country]

    n_bots = int(round(p.bot_share * n_users))
    bots = np.sort(rng.choice(n_users, size=n_bots, replace=False))
    is_bot = np.zeros(n_users, dtype=bool)
    is_bot[bots] = True
    humans = np.flatnonzero(~is_bot)
    n_heavy = int(round(p.heavy_listener_share * n_users))
    heavy = np.zeros(n_users, dtype=bool)
    heavy[rng.choice(humans, size=min(n_heavy, len(humans)), replace=False)] = True

    # Platform mix: a phone, often a second device, sometimes a third; bots and some humans
    # use exactly one platform, so the mix alone does not reveal a bot.
    mix = np.zeros((n_users, len(PLATFORMS)))
    phone = np.where(rng.random(n_users) < _COUNTRY_IOS[country], _IOS, _ANDROID)
    second = rng.choice([_DESKTOP, _WEB, _SPEAKER], size=n_users, p=[0.55, 0.2, 0.25])
    third = rng.choice([_DESKTOP, _WEB, _SPEAKER], size=n_users, p=[0.3, 0.4, 0.3])
    n_plat = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.5, 0.15])
    main = rng.choice([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9], size=n_users)
    mix[np.arange(n_users), phone] = np.where(n_plat == 1, 1.0, main)
    rest = 1.0 - main
    two = n_plat == 2
    three = (n_plat == 3) & (third != second)
    mix[np.flatnonzero(two), second[two]] += rest[two]
    r2 = np.round(rest * rng.choice([0.5, 0.6, 0.7], size=n_users) * 20) / 20
    mix[np.flatnonzero(three), second[three]] += r2[three]
    mix[np.flatnonzero(three), third[three]] += (rest - r2)[three]
    same = (n_plat == 3) & (third == second)
    mix[np.flatnonzero(same), second[same]] += rest[same]
    bot_platform = rng.choice([_DESKTOP, _WEB, _ANDROID], size=n_bots, p=[0.5, 0.3, 0.2])
    mix[bots] = 0.0
    mix[bots, bot_platform] = 1.0
    mix = np.round(mix, 2)
    mix_str = [
        LIST_SEPARATOR.join(
            f"{PLATFORMS[j]}:{_format_weight(mix[u, j])}" for j in np.flatnonzero(mix[u] > 0)
        )
        for u in range(n_users)
    ]
    platform_cdf = np.cumsum(mix, axis=1)
    platform_cdf /= platform_cdf[:, -1:]

    # Taste: one to three genres with Dirichlet weights; slots are padded with the genres
    # nearest to the resulting vector.
    # Only genres with tracks can be liked, so that every pool has candidates.
    has_tracks = np.bincount(cat.genre, minlength=n_genres) > 0
    n_g = np.minimum(rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.45, 0.2]), has_tracks.sum())
    logit = np.where(has_tracks, np.log(_GENRE_SHARE), -np.inf)
    picked = np.argsort(
        rng.gumbel(size=(n_users, n_genres)) + logit[None, :], axis=1
    )[:, ::-1][:, :3]
    gw = rng.dirichlet(np.full(3, 2.0), size=n_users)
    gw = np.where(np.arange(3)[None, :] < n_g[:, None], gw, 0.0)
    gw /= gw.sum(axis=1, keepdims=True)
    vec = np.einsum("uk,ukd->ud", gw, cat.centroids[picked]) + rng.normal(
        0.0, p.taste_noise, (n_users, dim)
    )
    vec = vec.astype(np.float32)
    rows = np.arange(n_users)[:, None]
    genre_weight = np.zeros((n_users, n_genres))
    genre_weight[rows, picked] = gw
    # Slots: the user's own genres by weight, then the genres nearest to the taste vector.
    sims = vec @ cat.centroids.T + np.where(genre_weight > 0, 1e6 + genre_weight, 0.0)
    sims[:, ~has_tracks] = -np.inf
    slots = np.argsort(-sims, axis=1, kind="stable")[:, :3]
    slot_weight = np.maximum(genre_weight[rows, slots], 0.08)
    slot_weight /= slot_weight.sum(axis=1, keepdims=True)

    # Log-normal activity, clipped so that no human listens around the clock, then rescaled
    # to mean 1 so that the preset's session rate holds.
    activity = np.minimum(rng.lognormal(0.0, 0.9, n_users), 4.0)
    activity /= activity.mean()
    rate = p.sessions_per_user_day * activity * np.where(heavy, 5.0, 1.0)
    comp = rng.choice(5, size=n_users, p=[0.2, 0.1, 0.3, 0.3, 0.1])
    peak_hour = (
        np.array([8.0, 12.5, 18.0, 21.0, 23.5])[comp] + rng.normal(0.0, 1.0, n_users)
    ) % 24
    hour_spread = np.where(heavy, 5.0, rng.uniform(1.0, 2.5, n_users))
    session_len = (
        p.plays_per_session * np.where(heavy, 1.8, 1.0) * rng.lognormal(-0.08, 0.4, n_users)
    )

    # A leading letter keeps ids from ever looking numeric to a CSV type inference.
    user_id = _random_ids(rng, n_users, 12, _BASE36, first=_BASE36[10:])
    frame = pd.DataFrame(
        {
            "user_id": user_id,
            "country": _COUNTRY_CODES[country],
            "account_type": np.where(premium, "premium", "free"),
            "platform_mix": mix_str,
        },
        columns=list(USER_COLUMNS),
    )
    return _Users(
        user_id=user_id, country=country, premium=premium, platform_cdf=platform_cdf, vec=vec,
        slots=slots, slot_weight=slot_weight, rate=rate, peak_hour=peak_hour,
        hour_spread=hour_spread, session_len=session_len, is_bot=is_bot, bots=bots,
        humans=humans, frame=frame,
    )


# --------------------------------------------------------------------------------------------
# Personal candidate pools


@dataclass
class _Pools:
    track: np.ndarray             # (U, K) candidate tracks
    cdf: np.ndarray               # flat _row_cdf of the choice weights
    width: int
    fallback: np.ndarray          # per user: best back-catalogue candidate
    aff_mean: float
    aff_std: float


def _build_pools(p: SimulatorPreset, seed: int, cat: _Catalogue, users: _Users) -> _Pools:
    rng = _rng(seed, 3)
    n_users = p.num_users
    kg = p.pool_per_genre
    n_fav, ka = 6, 6
    width = 3 * kg + n_fav * ka
    track = np.zeros((n_users, width), dtype=np.int64)
    score = np.full((n_users, width), -np.inf, dtype=np.float32)
    prior = (p.popularity_weight * cat.log_pop).astype(np.float32)
    inv_t = np.float32(1.0 / p.taste_temperature)

    # Score each user only against the tracks of its three genre slots: this keeps the cost
    # at users x (3 genres) rather than users x catalogue.
    for g in range(len(GENRES)):
        members = np.flatnonzero(cat.genre == g)
        if len(members) == 0:
            continue
        k = min(kg, len(members))
        vg = cat.vec[members].T
        us, slot = np.nonzero(users.slots == g)
        for lo in range(0, len(us), 1024):
            u = us[lo : lo + 1024]
            s = (users.vec[u] @ vg) * inv_t + prior[members][None, :]
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < len(members) else (
                np.broadcast_to(np.arange(k), (len(u), k))
            )
            cols = slot[lo : lo + 1024, None] * kg + np.arange(k)[None, :]
            track[u[:, None], cols] = members[top]
            score[u[:, None], cols] = np.take_along_axis(s, top, axis=1)

    # Favourite artists: drawn from the user's own slot candidates by choice weight, so they
    # are artists the user already likes; their top tracks get a loyalty bonus.
    slot_w = np.exp(score[:, : 3 * kg] - score[:, : 3 * kg].max(axis=1, keepdims=True))
    slot_cdf = _row_cdf(slot_w)
    n_f = np.minimum(1 + rng.poisson(max(p.favourite_artists - 1.0, 0.0), n_users), n_fav)
    rows = np.repeat(np.arange(n_users), n_fav)
    col = _sample_rows(slot_cdf, 3 * kg, rows, rng.random(n_users * n_fav))
    fav = cat.track_artist[track[rows, col]].reshape(n_users, n_fav)
    j = np.arange(ka)
    idx = cat.artist_start[fav][:, :, None] + j[None, None, :]
    ok = (j[None, None, :] < cat.artist_size[fav][:, :, None]) & (
        np.arange(n_fav)[None, :, None] < n_f[:, None, None]
    )
    ftrack = cat.artist_by_pop[np.where(ok, idx, 0)].reshape(n_users, n_fav * ka)
    fscore = (
        np.einsum("ud,ukd->uk", users.vec, cat.vec[ftrack]) * inv_t
        + prior[ftrack]
        + np.float32(p.favourite_bonus)
    )
    fscore[~ok.reshape(n_users, n_fav * ka)] = -np.inf
    track[:, 3 * kg :] = ftrack
    score[:, 3 * kg :] = fscore

    weight = np.exp((score - score.max(axis=1, keepdims=True)).astype(np.float64))
    cdf = _row_cdf(weight)
    back = np.where(cat.release_day[track] < 0, weight, 0.0)
    fallback = track[np.arange(n_users), np.argmax(back, axis=1)]
    # A pool of nothing but new releases is possible in tiny catalogues.
    catalogue_top = np.flatnonzero(cat.release_day < 0)[np.argmax(cat.log_pop[cat.release_day < 0])]
    fallback = np.where(back.max(axis=1) > 0, fallback, catalogue_top)

    # Population affinity statistics, used to turn an affinity into a skip propensity.
    su = rng.integers(0, n_users, 20_000)
    st = rng.integers(0, len(cat.genre), 20_000)
    aff = np.einsum("ud,ud->u", users.vec[su], cat.vec[st])
    return _Pools(
        track=track, cdf=cdf, width=width, fallback=fallback,
        aff_mean=float(aff.mean()), aff_std=float(aff.std()),
    )


# --------------------------------------------------------------------------------------------
# One day of plays

# Channels for picking the next track.
_POOL, _NEW, _POP, _ARTIST, _ALBUM, _NEIGH = range(6)
_CH_FIRST = np.array([0.82, 0.06, 0.12, 0.0, 0.0, 0.0])
_CH_ORDERED = np.array([0.46, 0.04, 0.06, 0.16, 0.10, 0.18])
_CH_SHUFFLE = np.array([0.68, 0.05, 0.07, 0.07, 0.02, 0.11])


def _energy_target(local_hour: np.ndarray, weekday: int) -> np.ndarray:
    h = local_hour
    target = np.select(
        [h < 5, h < 9, h < 17, h < 21], [0.3, 0.62, 0.55, 0.65], default=0.45
    )
    # Friday and Saturday nights (plus the small hours after) are party time.
    party = ((weekday in (4, 5)) & (h >= 20)) | ((weekday in (5, 6)) & (h < 3))
    return np.where(party, 0.82, target)


def _serialise_sessions(
    user: np.ndarray, start: np.ndarray, duration: np.ndarray, pause: np.ndarray
) -> np.ndarray:
    """Delay sessions so that one user's sessions of a day never overlap.

    Within a user, sorted by start, the actual start is ``x_i = max(s_i, x_{i-1} + d_{i-1} +
    pause)``; with ``c_i`` the prefix sum of ``d + pause`` this is a running maximum of
    ``s_i - c_i``, computed for all users at once by lifting each user's values above the
    previous user's.
    """
    order = np.lexsort((start, user))
    u, s, d = user[order], start[order], duration[order] + pause[order]
    new_user = np.r_[True, u[1:] != u[:-1]]
    group = np.cumsum(new_user) - 1
    cs = np.cumsum(d)
    c = cs - d - (cs - d)[np.flatnonzero(new_user)][group]
    lift = group * 1e7
    y = np.maximum.accumulate(s - c + lift) - lift
    out = np.empty_like(start)
    out[order] = y + c
    return out


@dataclass
class _DayPlays:
    user: np.ndarray
    second: np.ndarray            # float seconds since 00:00 UTC of the day (play end)
    platform: np.ndarray
    ms: np.ndarray
    country: np.ndarray
    track: np.ndarray
    reason_start: np.ndarray
    reason_end: np.ndarray
    shuffle: np.ndarray
    skipped: np.ndarray
    offline: np.ndarray
    order: np.ndarray             # tie-breaker for sorting


def _empty_day() -> _DayPlays:
    z = np.zeros(0, dtype=np.int64)
    return _DayPlays(
        user=z, second=z.astype(np.float64), platform=z, ms=z, country=z, track=z,
        reason_start=z, reason_end=z, shuffle=z.astype(bool), skipped=z.astype(bool),
        offline=z.astype(bool), order=z,
    )


def _human_day(
    p: SimulatorPreset, seed: int, day: int, weekday: int, cat: _Catalogue, users: _Users,
    pools: _Pools, neigh: np.ndarray, pop_cdf: np.ndarray, pop_tracks: np.ndarray,
) -> _DayPlays:
    rng = _rng(seed, 100, day)
    weekend = weekday >= 5

    # Sessions.
    hu = users.humans
    n_sess = rng.poisson(users.rate[hu] * _WEEKDAY_RATE[weekday])
    su = np.repeat(hu, n_sess)
    n_sessions = len(su)
    if n_sessions == 0:
        return _empty_day()
    use_peak = rng.random(n_sessions) < 0.6
    peak = users.peak_hour[su] + (0.8 if weekend else 0.0)
    h_peak = peak + rng.normal(0.0, 1.0, n_sessions) * users.hour_spread[su]
    h_glob = rng.choice(24, size=n_sessions, p=_DIURNAL[int(weekend)]) + rng.random(n_sessions)
    local_h = np.where(use_peak, h_peak, h_glob) % 24.0
    start_s = (local_h * 3600.0 - _COUNTRY_OFFSET_S[users.country[su]]) % 86400.0

    platform = (rng.random(n_sessions)[:, None] > users.platform_cdf[su]).sum(axis=1)
    platform = np.minimum(platform, len(PLATFORMS) - 1)
    mobile = platform <= _IOS
    premium = users.premium[su]
    shuffle_p = np.where(~premium & mobile, 0.8, np.where(platform == _SPEAKER, 0.2, 0.35))
    shuffle = rng.random(n_sessions) < shuffle_p
    offline = premium & mobile & (rng.random(n_sessions) < 0.06)
    country = np.where(
        rng.random(n_sessions) < 0.015,
        rng.choice(len(_COUNTRIES), size=n_sessions, p=_COUNTRY_SHARE),
        users.country[su],
    )
    mean_len = users.session_len[su] * np.select(
        [platform == _DESKTOP, platform == _SPEAKER], [1.3, 0.8], default=1.0
    )
    length = np.minimum(rng.geometric(1.0 / np.maximum(mean_len, 1.0)), np.ceil(6 * mean_len))
    length = length.astype(np.int64)
    e_target = _energy_target(local_h, weekday)

    # Plays, laid out session-major.
    n_plays = int(length.sum())
    sess = np.repeat(np.arange(n_sessions), length)
    first = np.r_[0, np.cumsum(length)[:-1]]
    pos = np.arange(n_plays) - first[sess]
    user = su[sess]

    probs = np.where(
        (pos == 0)[:, None], _CH_FIRST[None, :],
        np.where(shuffle[sess][:, None], _CH_SHUFFLE[None, :], _CH_ORDERED[None, :]),
    )
    # Voice requests favour what is popular.
    speaker = platform[sess] == _SPEAKER
    probs[speaker, _POP] *= 2.5
    probs /= probs.sum(axis=1, keepdims=True)
    channel = (rng.random(n_plays)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    channel = np.minimum(channel, _NEIGH)

    # Pool draws, reweighted by how well a track's energy suits the local hour
    # (sampling-importance-resampling over a few candidates): pool tracks are then chosen
    # with probability ~ pool weight x fit, so the hour of day carries signal.
    width = pools.width
    flat = pools.track.ravel()
    cands = np.stack(
        [
            flat[user * width + _sample_rows(pools.cdf, width, user, rng.random(n_plays))]
            for _ in range(4)
        ],
        axis=1,
    )
    fit = -((cat.energy[cands] - e_target[sess][:, None]) ** 2) / (2 * 0.15**2)
    fit = np.where(cat.release_day[cands] <= day, fit, -np.inf)
    pick = np.argmax(fit + rng.gumbel(size=fit.shape), axis=1)
    base = np.where(
        np.isfinite(fit.max(axis=1)), cands[np.arange(n_plays), pick], pools.fallback[user]
    )

    # New releases of one of the user's genres, weighted by popularity and recency.
    age = day - cat.release_day
    recent = np.flatnonzero((cat.release_day >= 1) & (age >= 0) & (age < 14))
    is_new = channel == _NEW
    if len(recent) and is_new.any():
        order = np.argsort(cat.genre[recent], kind="stable")
        recent = recent[order]
        rg = cat.genre[recent]
        w = np.exp(cat.log_pop[recent] * 0.5 - age[recent] / 5.0)
        gcdf = _group_cdf(w, rg)
        gstart = np.full(len(GENRES), -1)
        gsize = np.zeros(len(GENRES), dtype=np.int64)
        gs, gfirst, gcount = np.unique(rg, return_index=True, return_counts=True)
        gstart[gs], gsize[gs] = gfirst, gcount
        ni = np.flatnonzero(is_new)
        slot_cdf = _row_cdf(users.slot_weight[user[ni]])
        slot = _sample_rows(slot_cdf, 3, np.arange(len(ni)), rng.random(len(ni)))
        g = users.slots[user[ni], slot]
        has = gsize[g] > 0
        pick = _sample_groups(
            gcdf, np.maximum(gstart, 0), np.maximum(gsize, 1), g[has], rng.random(int(has.sum()))
        )
        base[ni[has]] = recent[pick]
    is_pop = channel == _POP
    pop_pick = np.searchsorted(pop_cdf, rng.random(int(is_pop.sum())), side="right")
    base[is_pop] = pop_tracks[np.minimum(pop_pick, len(pop_tracks) - 1)]

    # Coherent continuations depend on the previous track, so they are resolved position by
    # position (vectorised over all sessions of the day).
    track = base
    u_seq = rng.random(n_plays)
    u_alb = rng.random(n_plays)
    seq = np.flatnonzero(channel >= _ARTIST)
    seq = seq[np.argsort(pos[seq], kind="stable")]
    bounds = np.searchsorted(pos[seq], np.arange(1, int(pos.max(initial=0)) + 2))
    n_tracks = len(cat.genre)
    for k in range(len(bounds) - 1):
        i = seq[bounds[k] : bounds[k + 1]]
        if len(i) == 0:
            continue
        prev = track[i - 1]
        ch = channel[i]
        by_artist = _sample_groups(
            cat.artist_cdf, cat.artist_start, cat.artist_size, cat.track_artist[prev], u_seq[i]
        )
        nxt = np.minimum(prev + 1, n_tracks - 1)
        alb = cat.track_album[prev]
        in_order = (cat.track_album[nxt] == alb) & (u_alb[i] < 0.6)
        by_album = np.where(
            in_order, nxt,
            cat.album_start[alb] + (u_seq[i] * cat.album_size[alb]).astype(np.int64),
        )
        by_neigh = neigh[prev, (u_seq[i] * neigh.shape[1]).astype(np.int64)]
        cand = np.select([ch == _ARTIST, ch == _ALBUM], [by_artist, by_album], default=by_neigh)
        track[i] = np.where(cat.release_day[cand] <= day, cand, track[i])

    # Skips: low affinity, shuffle and being mid-session make a skip likelier.
    aff = np.einsum("pd,pd->p", users.vec[user], cat.vec[track])
    z = (aff - pools.aff_mean) / pools.aff_std
    logit = p.skip_bias - 0.95 * z + 0.45 * shuffle[sess] - 0.8 * (pos == 0)
    skipped = rng.random(n_plays) < 1.0 / (1.0 + np.exp(-logit))

    dur = cat.duration_ms[track]
    last = pos == length[sess] - 1
    late_skip = skipped & (rng.random(n_plays) < 0.06)
    ms_skip = np.clip(np.exp(rng.normal(np.log(6000.0), 0.9, n_plays)), 400, SKIP_THRESHOLD_MS - 1)
    u_end = rng.random(n_plays)
    stop_early = ~skipped & ((u_end < 0.05) | (last & (u_end < 0.45)))
    ms_late_skip = SKIP_THRESHOLD_MS + rng.random(n_plays) * np.maximum(
        0.8 * dur - SKIP_THRESHOLD_MS, 1
    )
    # Only a session's last play may stop before 30 s without being a skip (app closed).
    ms_stop = np.where(last, 5_000, SKIP_THRESHOLD_MS) + rng.random(n_plays) * np.maximum(
        dur - SKIP_THRESHOLD_MS, 1
    )
    ms_done = dur - rng.integers(0, 800, n_plays)
    ms = np.where(
        skipped, np.where(late_skip, ms_late_skip, ms_skip), np.where(stop_early, ms_stop, ms_done)
    )
    ms = np.minimum(ms, dur).astype(np.int64)
    reason_end = np.where(
        skipped, _RE["fwdbtn"],
        np.where(
            stop_early,
            np.where(last & (rng.random(n_plays) < 0.35), _RE["logout"], _RE["endplay"]),
            _RE["trackdone"],
        ),
    )
    prev_end = np.r_[-1, reason_end[:-1]]
    u_rs = rng.random(n_plays)
    first_reason = np.where(
        platform[sess] == _SPEAKER, _RS["remote"],
        np.select(
            [u_rs < 0.35, u_rs < 0.75], [_RS["appload"], _RS["clickrow"]], default=_RS["playbtn"]
        ),
    )
    reason_start = np.where(
        pos == 0, first_reason,
        np.select(
            [prev_end == _RE["fwdbtn"], prev_end == _RE["trackdone"]],
            [_RS["fwdbtn"], np.where(u_rs < 0.9, _RS["trackdone"], _RS["clickrow"])],
            default=_RS["clickrow"],
        ),
    )

    # Timestamps are play *end* times (Spotify semantics); plays running past midnight are
    # cut, which keeps every row inside its span's day.
    # Picking a row by hand takes a while; automatic transitions are nearly gapless.
    gap = np.where(
        reason_start == _RS["clickrow"],
        rng.uniform(2.0, 40.0, n_plays),
        rng.uniform(0.05, 1.5, n_plays),
    )
    step = gap + ms / 1000.0
    csum = np.cumsum(step)
    within = csum - (csum[first] - step[first])[sess]
    start_s = _serialise_sessions(
        su, start_s, within[first + length - 1], rng.uniform(30.0, 900.0, n_sessions)
    )
    end = start_s[sess] + within
    keep = end < 86400.0
    return _DayPlays(
        user=user[keep], second=end[keep], platform=platform[sess][keep], ms=ms[keep],
        country=country[sess][keep], track=track[keep], reason_start=reason_start[keep],
        reason_end=reason_end[keep], shuffle=shuffle[sess][keep], skipped=skipped[keep],
        offline=offline[sess][keep], order=np.flatnonzero(keep),
    )


@dataclass
class _Bots:
    loop: np.ndarray              # (n_bots, 6) tracks, cycled
    loop_len: np.ndarray
    rate: np.ndarray              # extra plays per hour
    start_day: np.ndarray
    platform: np.ndarray


def _build_bots(p: SimulatorPreset, seed: int, cat: _Catalogue, users: _Users) -> _Bots:
    rng = _rng(seed, 4)
    n = len(users.bots)
    # Fraud farms promote obscure back-catalogue tracks; bots in a farm share the target set.
    back = cat.release_day < 0
    obscure = np.flatnonzero(back & (cat.log_pop < np.median(cat.log_pop)))
    if len(obscure) == 0:
        obscure = np.flatnonzero(back)
    n_farms = max(1, int(np.ceil(n / 8)))
    farm_tracks = rng.choice(obscure, size=(n_farms, 8), replace=len(obscure) < n_farms * 8)
    farm = rng.integers(0, n_farms, n)
    loop_len = rng.integers(3, 7, n)
    order = rng.permuted(np.tile(np.arange(8), (n, 1)), axis=1)[:, :6]
    loop = np.take_along_axis(farm_tracks[farm], order, axis=1)
    platform = np.argmax(users.platform_cdf[users.bots] > 0, axis=1)
    return _Bots(
        loop=loop, loop_len=loop_len,
        rate=rng.uniform(0.4, 1.6, n) * p.bot_plays_per_hour,
        start_day=rng.integers(0, max(1, p.num_days // 3), n),
        platform=platform,
    )


def _bot_day(seed: int, day: int, users: _Users, bots: _Bots) -> _DayPlays:
    rng = _rng(seed, 200, day)
    active = np.flatnonzero(bots.start_day <= day)
    if len(active) == 0:
        return _empty_day()
    b = np.repeat(active, 24)
    hour = np.tile(np.arange(24), len(active))
    k = 1 + rng.poisson(bots.rate[b])
    n_plays = int(k.sum())
    burst = np.repeat(np.arange(len(b)), k)
    first = np.r_[0, np.cumsum(k)[:-1]]
    j = np.arange(n_plays) - first[burst]
    ms = rng.integers(BOT_MS_RANGE[0], BOT_MS_RANGE[1] + 1, n_plays)
    step = ms / 1000.0 + rng.uniform(0.2, 2.0, n_plays)
    csum = np.cumsum(step)
    rel = csum - (csum[first] - step[first])[burst]
    span = (csum[first + k - 1] - (csum[first] - step[first]))
    start = hour * 3600.0 + rng.random(len(b)) * np.maximum(3599.0 - span, 0.0)
    bot = b[burst]
    offset = rng.integers(0, 6, len(b))[burst]
    track = bots.loop[bot, (offset + j) % bots.loop_len[bot]]
    uid = users.bots[bot]
    end = start[burst] + rel
    keep = end < 86400.0
    zeros = np.zeros(int(keep.sum()), dtype=bool)
    return _DayPlays(
        user=uid[keep], second=end[keep], platform=bots.platform[bot][keep], ms=ms[keep],
        country=users.country[uid][keep], track=track[keep],
        reason_start=np.where(j == 0, _RS["clickrow"], _RS["trackdone"])[keep],
        reason_end=np.full(int(keep.sum()), _RE["trackdone"]), shuffle=zeros, skipped=zeros,
        offline=zeros, order=np.flatnonzero(keep),
    )


# --------------------------------------------------------------------------------------------
# Writing


_HMS = np.array(
    [f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)],
    dtype=object,
)
_TF = np.array(["false", "true"], dtype=object)
_FLAGS = np.array(
    [f"{_TF[a]},{_TF[b]},{_TF[c]}" for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=object
)


def _write_day(
    path: str, date: dt.date, plays: list[_DayPlays], cat: _Catalogue, users: _Users
) -> int:
    cols = {
        f.name: np.concatenate([getattr(d, f.name) for d in plays])
        for f in dataclasses.fields(_DayPlays)
    }
    source = np.concatenate([np.full(len(d.user), i) for i, d in enumerate(plays)])
    sec = np.floor(cols["second"]).astype(np.int64)
    # Exact play end first, then stable tie-breakers, so that the order is reproducible.
    order = np.lexsort((cols["order"], cols["user"], source, cols["second"]))
    sec = sec[order]
    c = {k: v[order] for k, v in cols.items()}
    ts = (date.isoformat() + "T") + _HMS[sec]
    rows = _join_columns(
        [
            ts,
            users.user_id[c["user"]],
            np.array(PLATFORMS, dtype=object)[c["platform"]],
            c["ms"].astype(str).astype(object),
            _COUNTRY_CODES[c["country"]],
            cat.csv_fragment[c["track"]],
            np.array(REASONS_START, dtype=object)[c["reason_start"]],
            np.array(REASONS_END, dtype=object)[c["reason_end"]],
            _FLAGS[4 * c["shuffle"] + 2 * c["skipped"].astype(np.int64) + c["offline"]],
        ]
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(PLAY_COLUMNS) + "\n")
        if len(rows):
            f.write("\n".join(rows.tolist()))
            f.write("\n")
    return len(rows)


def _resolve(preset: "str | SimulatorPreset") -> SimulatorPreset:
    if isinstance(preset, SimulatorPreset):
        p = preset
    elif preset in PRESETS:
        p = PRESETS[preset]
    else:
        raise ValueError(f"unknown simulator preset {preset!r}; known: {sorted(PRESETS)}")
    if not (p.num_users >= 1 and p.num_artists >= 1 and p.num_days >= 1):
        raise ValueError(f"preset {p.name!r} needs at least one user, artist and day")
    if p.num_tracks < p.num_artists:
        raise ValueError(f"preset {p.name!r}: every artist needs a track (tracks >= artists)")
    if not (0.0 <= p.bot_share < 1.0 and 0.0 <= p.new_release_share < 1.0):
        raise ValueError(f"preset {p.name!r}: bot_share and new_release_share must be in [0, 1)")
    if p.num_days > 9999:
        raise ValueError("at most 9999 days (span folders have four digits)")
    return p


def span_dir(out_dir: str, day: int) -> str:
    """Folder of the plays of 0-based ``day``: ``plays/span-NNNN`` with NNNN = day + 1."""
    return os.path.join(out_dir, PLAYS_DIR, span_name(day + 1))


def generate(preset: "str | SimulatorPreset", out_dir: str, seed: int = 0) -> SimulationSummary:
    """Simulate ``preset`` with ``seed`` and write the data set under ``out_dir``.

    Writes ``catalogue.csv``, ``users.csv``, ``plays/span-NNNN/plays.csv`` (one per day,
    NNNN from 0001, rows sorted by ``ts``), ``truth/bots.csv`` and ``manifest.json``. Existing
    ``plays/span-*`` folders under ``out_dir`` are removed first so that a smaller rerun leaves
    no stale spans behind. The output is a pure function of ``(preset, seed)``.
    """
    p = _resolve(preset)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    seed = int(seed)
    start = dt.date.fromisoformat(p.start_date)
    os.makedirs(out_dir, exist_ok=True)
    plays_root = os.path.join(out_dir, PLAYS_DIR)
    if os.path.isdir(plays_root):
        for name in os.listdir(plays_root):
            if re.fullmatch(re.escape(SPAN_PREFIX) + r"\d{4}", name):
                shutil.rmtree(os.path.join(plays_root, name))

    cat = _build_catalogue(p, seed, start)
    users = _build_users(p, seed, cat)
    pools = _build_pools(p, seed, cat, users)
    neigh = _neighbours(cat)
    bots = _build_bots(p, seed, cat, users)
    pop_tracks = np.flatnonzero(cat.release_day < 0)
    pop_w = np.exp(cat.log_pop[pop_tracks])
    pop_cdf = np.cumsum(pop_w) / pop_w.sum()

    cat.frame.to_csv(os.path.join(out_dir, CATALOGUE_FILE), index=False, lineterminator="\n")
    users.frame.to_csv(os.path.join(out_dir, USERS_FILE), index=False, lineterminator="\n")
    os.makedirs(os.path.join(out_dir, TRUTH_DIR), exist_ok=True)
    pd.DataFrame({"user_id": users.user_id[users.bots]}, columns=list(BOT_COLUMNS)).to_csv(
        os.path.join(out_dir, TRUTH_DIR, BOTS_FILE), index=False, lineterminator="\n"
    )

    plays_per_day = []
    bot_plays = 0
    for day in range(p.num_days):
        date = start + dt.timedelta(days=day)
        human = _human_day(
            p, seed, day, date.weekday(), cat, users, pools, neigh, pop_cdf, pop_tracks
        )
        bot = _bot_day(seed, day, users, bots)
        path = os.path.join(span_dir(out_dir, day), PLAYS_FILE)
        n = _write_day(path, date, [human, bot], cat, users)
        plays_per_day.append(n)
        bot_plays += len(bot.user)

    summary = SimulationSummary(
        out_dir=out_dir, preset=p.name, seed=seed, num_users=p.num_users,
        num_bots=len(users.bots), num_tracks=p.num_tracks, num_plays=int(sum(plays_per_day)),
        num_bot_plays=int(bot_plays), num_days=p.num_days,
    )
    manifest = {
        "format": FORMAT,
        "preset": p.name,
        "seed": seed,
        "start_date": start.isoformat(),
        "num_days": p.num_days,
        "num_users": p.num_users,
        "num_bots": summary.num_bots,
        "num_tracks": p.num_tracks,
        "num_artists": p.num_artists,
        "num_new_releases": int((cat.release_day >= 1).sum()),
        "num_plays": summary.num_plays,
        "num_bot_plays": summary.num_bot_plays,
        "plays_per_day": plays_per_day,
        "preset_parameters": dataclasses.asdict(p),
    }
    with open(os.path.join(out_dir, MANIFEST_FILE), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return summary


def main(argv: "list[str] | None" = None) -> None:
    """Command line: ``python -m crossfade.components.listening_data.simulator --preset NAME OUT``.

    ``--preset`` defaults to ``default``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    summary = generate(args.preset, args.out_dir, args.seed)
    print(f"{summary} in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
