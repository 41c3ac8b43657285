"""The simulated catalogue: artists, albums and tracks in a latent taste space, with metadata.

Genres are clusters: an artist's vector is its genre centroid plus noise orthogonal to it, and a
track's vector is its artist's vector plus orthogonal noise. Popularity is Zipf-like by rank of
a latent "buzz" (``popularity ~ rank ** -zipf_exponent``) mixing artist fame and track luck.
Release dates are per album; ``new_release_share`` of the tracks are released on a day inside
the simulated period. Tags favour the track's genres and the mood words aligned with its vector,
and audio descriptors follow the genre profile plus a within-genre latent direction, so content
features predict taste. `Catalogue.vec` is the truth that the environment's diversity measures use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import CATALOGUE_COLUMNS, LIST_SEPARATOR
from crossfade.components.listening_data.simulator.csv_text import csv_field, join_columns
from crossfade.components.listening_data.simulator.presets import SimulatorPreset
from crossfade.components.listening_data.simulator.sampling import group_cdf, random_ids, stream_rng
from crossfade.components.listening_data.simulator.vocabulary import (
    BASE62,
    FIRST_NAMES,
    GENRE_AUDIO,
    GENRE_SHARE,
    GENRE_TAGS,
    GENRES,
    LAST_NAMES,
    MOOD_TAGS,
    TAG_VOCABULARY,
    TITLE_WORDS,
)


@dataclass
class Catalogue:
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
    words = np.array(TITLE_WORDS, dtype=object)
    k = rng.integers(1, max_words + 1, size=n)
    picks = rng.integers(0, len(words), size=(n, max_words))
    return [" ".join(words[picks[i, : k[i]]]) for i in range(n)]


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    w1 = rng.integers(0, len(TITLE_WORDS), n)
    w2 = rng.integers(0, len(TITLE_WORDS), n)
    style = rng.choice(5, size=n, p=[0.35, 0.25, 0.15, 0.15, 0.10])
    names = []
    for i in range(n):
        s = style[i]
        if s == 0:
            names.append(f"{FIRST_NAMES[first[i]]} {LAST_NAMES[last[i]]}")
        elif s == 1:
            names.append(f"The {TITLE_WORDS[w1[i]]} {TITLE_WORDS[w2[i]]}s")
        elif s == 2:
            names.append(f"{TITLE_WORDS[w1[i]]} {TITLE_WORDS[w2[i]]}")
        elif s == 3:
            names.append(f"{FIRST_NAMES[first[i]]} & the {TITLE_WORDS[w1[i]]}s")
        else:
            names.append(f"DJ {TITLE_WORDS[w1[i]]}")
    # Disambiguate rare collisions so that an artist name identifies an artist.
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            seen[name] += 1
            names[i] = f"{name} {seen[name]}"
        else:
            seen[name] = 1
    return names


def build_catalogue(p: SimulatorPreset, seed: int, start: dt.date) -> Catalogue:
    rng = stream_rng(seed, 1)
    n_genres, dim, n_artists, n_tracks = len(GENRES), p.latent_dim, p.num_artists, p.num_tracks

    centroids = rng.standard_normal((n_genres, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    related = np.argsort(-(centroids @ centroids.T), axis=1)[:, 1:4]

    artist_genre = rng.choice(n_genres, size=n_artists, p=GENRE_SHARE)
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
    n_gt = sum(len(t) for t in GENRE_TAGS)
    tag_dir = rng.standard_normal((len(MOOD_TAGS), dim)).astype(np.float32)
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
    prof = GENRE_AUDIO[genre]
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

    track_id = "spotify:track:" + random_ids(rng, n_tracks, 22, BASE62)
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
    csv_fragment = join_columns(
        [
            csv_field(titles),
            csv_field(artist_name)[track_artist],
            csv_field(album_name)[track_album],
            track_id,
        ]
    )

    within = np.exp(log_pop)
    artist_cdf = group_cdf(within, track_artist)
    artist_by_pop = np.lexsort((-log_pop, track_artist))
    return Catalogue(
        track_id=track_id, title=titles, artist_name=artist_name, album_name=album_name,
        track_artist=track_artist, track_album=track_album, genre=genre, vec=vec,
        log_pop=log_pop, release_day=release_day, duration_ms=duration_ms, energy=energy,
        artist_start=artist_start, artist_size=counts, artist_cdf=artist_cdf,
        artist_by_pop=artist_by_pop, album_start=album_start, album_size=album_size,
        centroids=centroids, frame=frame, csv_fragment=csv_fragment,
    )


def neighbours(cat: Catalogue, m: int = 10) -> np.ndarray:
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
