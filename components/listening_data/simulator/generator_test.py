"""Tests of the log generator: determinism, file formats and learnable structure."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.layout import CATALOGUE_COLUMNS, PLAY_COLUMNS
from crossfade.components.listening_data.simulator.generator import SimulationSummary, generate
from crossfade.components.listening_data.simulator.presets import PRESETS
from crossfade.components.listening_data.simulator.vocabulary import (
    COUNTRIES,
    GENRES,
    PLATFORMS,
    REASONS_END,
    REASONS_START,
    TAG_VOCABULARY,
)
from crossfade.components.testing_data import file_tree

# Small enough to generate several times per test run.
_MICRO = testing_simulation.MICRO


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, str]:
    out = str(tmp_path_factory.mktemp("tiny"))
    return generate("tiny", out, seed=7), out


def _read(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def plays(tiny: tuple[SimulationSummary, str]) -> pd.DataFrame:
    _, out = tiny
    frames = []
    for day in range(PRESETS["tiny"].num_days):
        df = _read(os.path.join(out, "plays", f"span-{day + 1:04d}", "plays.csv"))
        frames.append(df.assign(day=day))
    df = pd.concat(frames, ignore_index=True)
    df["ms"] = df.ms_played.astype(np.int64)
    bots = set(_read(os.path.join(out, "truth", "bots.csv")).user_id)
    df["bot"] = df.username.isin(bots)
    return df


@pytest.fixture(scope="module")
def catalogue(tiny: tuple[SimulationSummary, str]) -> pd.DataFrame:
    return _read(os.path.join(tiny[1], "catalogue.csv"))


# ------------------------------------------------------------------------------------------
# API and determinism


def test_presets_have_the_documented_scale() -> None:
    assert set(PRESETS) == {"tiny", "small", "default", "large"}
    for name, p in PRESETS.items():
        assert p.name == name
    large = PRESETS["large"]
    assert large.num_users >= 100_000 and large.num_tracks >= 100_000 and large.num_days >= 28
    expected_large_plays = (
        large.num_users * large.sessions_per_user_day * large.plays_per_session * large.num_days
    )
    assert expected_large_plays >= 10_000_000
    assert len(PLAY_COLUMNS) == 14 and PLAY_COLUMNS[0] == "ts"
    assert CATALOGUE_COLUMNS[0] == "track_id"


def test_unknown_preset_and_bad_seed_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown simulator preset"):
        generate("huge", str(tmp_path))
    with pytest.raises(ValueError):
        generate(_MICRO, str(tmp_path), seed=-1)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path) -> None:
    a, b, c = (str(tmp_path / x) for x in "abc")
    generate(_MICRO, a, seed=3)
    generate(_MICRO, b, seed=3)
    generate(_MICRO, c, seed=4)
    fa, fb, fc = file_tree(a), file_tree(b), file_tree(c)
    assert fa == fb
    assert set(fa) == set(fc)
    for name in ("catalogue.csv", "users.csv", "plays/span-0001/plays.csv"):
        assert fa[name] != fc[name], name


# sha256 of the lines "<path> <sha256 of the file>\\n", sorted by path, of every file
# `generate("tiny", seed=0)` wrote before likes and friends existed (and before the simulator
# became a package): the presets' files stay byte-identical per seed, so every baseline measured on
# them stays comparable. A change here is a change of the data set (numpy is pinned by the lock).
_TINY_SEED0_DIGEST = "52d22a6a9a2260a75c4cbad533fa7e2bd78e2f14402d897ae4a023287676f14d"


def test_tiny_seed_0_files_are_byte_identical_to_the_recorded_ones(tmp_path) -> None:
    generate("tiny", str(tmp_path), seed=0)
    tree = file_tree(str(tmp_path))
    lines = "".join(
        f"{name} {hashlib.sha256(tree[name]).hexdigest()}\n"
        for name in sorted(tree) if name not in ("likes.csv", "friends.csv")
    )
    assert hashlib.sha256(lines.encode()).hexdigest() == _TINY_SEED0_DIGEST


def test_likes_are_streamed_human_plays_saved_once(tiny, plays) -> None:
    _, out = tiny
    likes = _read(os.path.join(out, "likes.csv"))
    assert list(likes.columns) == ["user_id", "track_id", "ts"]
    assert len(likes) > 0 and not likes.duplicated(["user_id", "track_id"]).any()
    assert list(likes.ts) == sorted(likes.ts)
    streamed = plays[(plays.ms >= 30_000) & ~plays.bot]
    pairs = set(zip(streamed.username, streamed.spotify_track_uri, strict=True))
    assert set(zip(likes.user_id, likes.track_id, strict=True)) <= pairs
    # A like is the end of the pair's first liked play, so no like precedes the pair's
    # first stream.
    first = streamed.groupby(["username", "spotify_track_uri"]).ts.min()
    pair_index = list(zip(likes.user_id, likes.track_id, strict=True))
    assert (likes.ts.values >= first.loc[pair_index].values).all()


def test_stale_spans_from_an_earlier_run_are_removed(tmp_path) -> None:
    stale = tmp_path / "plays" / "span-0009"
    stale.mkdir(parents=True)
    (stale / "plays.csv").write_text("old\n")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine\n")
    generate(_MICRO, str(tmp_path), seed=0)
    assert sorted(os.listdir(tmp_path / "plays")) == [f"span-{i:04d}" for i in range(1, 5)]
    assert keep.read_text() == "mine\n"


# ------------------------------------------------------------------------------------------
# File formats


def test_layout_headers_summary_and_manifest(tiny, plays) -> None:
    summary, out = tiny
    p = PRESETS["tiny"]
    assert sorted(os.listdir(os.path.join(out, "plays"))) == [
        f"span-{i:04d}" for i in range(1, p.num_days + 1)
    ]
    headers = {
        "catalogue.csv": list(CATALOGUE_COLUMNS),
        "users.csv": ["user_id", "country", "account_type", "platform_mix"],
        "truth/bots.csv": ["user_id"],
        "plays/span-0001/plays.csv": list(PLAY_COLUMNS),
    }
    for name, header in headers.items():
        with open(os.path.join(out, name), newline="", encoding="utf-8") as f:
            assert next(csv.reader(f)) == header, name

    assert summary.preset == "tiny" and summary.seed == 7 and summary.num_days == p.num_days
    assert summary.num_users == p.num_users and summary.num_tracks == p.num_tracks
    assert summary.num_plays == len(plays)
    assert summary.num_bot_plays == int(plays.bot.sum()) > 0
    assert 25_000 <= summary.num_plays <= 40_000

    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["format"] == "crossfade-simulator/1"
    assert manifest["start_date"] == "2024-03-01"
    assert manifest["preset"] == "tiny" and manifest["seed"] == 7
    assert manifest["num_plays"] == summary.num_plays
    assert manifest["num_bots"] == summary.num_bots
    assert sum(manifest["plays_per_day"]) == summary.num_plays


def test_catalogue_rows(catalogue) -> None:
    p = PRESETS["tiny"]
    assert len(catalogue) == p.num_tracks
    assert catalogue.track_id.str.fullmatch(r"spotify:track:[0-9A-Za-z]{22}").all()
    assert catalogue.track_id.is_unique
    genres = catalogue.genres.str.split("|")
    assert genres.map(len).between(1, 3).all()
    assert all(set(g) <= set(GENRES) and len(set(g)) == len(g) for g in genres)
    tags = catalogue.tags.str.split("|")
    assert tags.map(len).between(2, 8).all()
    assert all(set(t) <= set(TAG_VOCABULARY) and len(set(t)) == len(t) for t in tags)
    audio = ["tempo", "energy", "danceability", "valence", "acousticness", "loudness"]
    num = catalogue[audio].astype(float)
    assert num.tempo.between(60, 200).all() and num.loudness.between(-30, 0).all()
    for col in ("energy", "danceability", "valence", "acousticness"):
        assert num[col].between(0, 1).all(), col
    assert catalogue.duration_ms.astype(int).between(60_000, 1_200_000).all()
    dates = pd.to_datetime(catalogue.release_date, format="%Y-%m-%d")
    start = pd.Timestamp(p.start_date)
    new = dates >= start
    assert abs(new.mean() - p.new_release_share) < 0.03
    assert (dates[new] < start + pd.Timedelta(days=p.num_days)).all()
    # Names are free text: some contain commas and must round-trip through CSV quoting.
    assert catalogue.title.str.contains(",").any() or catalogue.album.str.contains(",").any()
    # Audio descriptors follow genre: classical is calmer than metal.
    primary = catalogue.genres.str.split("|").str[0]
    energy = num.energy.groupby(primary).mean()
    if {"classical", "metal"} <= set(energy.index):
        assert energy["classical"] < energy["metal"]


def test_users_rows(tiny) -> None:
    _, out = tiny
    users = _read(os.path.join(out, "users.csv"))
    bots = _read(os.path.join(out, "truth", "bots.csv"))
    assert len(users) == PRESETS["tiny"].num_users and users.user_id.is_unique
    assert users.country.str.fullmatch(r"[A-Z]{2}").all()
    assert set(users.account_type) == {"free", "premium"}
    for mix in users.platform_mix:
        parts = [x.split(":") for x in mix.split("|")]
        assert {k for k, _ in parts} <= set(PLATFORMS)
        assert abs(sum(float(w) for _, w in parts) - 1.0) < 1e-9, mix
    assert set(bots.user_id) <= set(users.user_id)
    assert len(bots) == round(PRESETS["tiny"].bot_share * PRESETS["tiny"].num_users)


def test_play_rows_are_consistent_with_catalogue_and_users(tiny, plays, catalogue) -> None:
    _, out = tiny
    users = _read(os.path.join(out, "users.csv"))
    assert set(plays.username) <= set(users.user_id)
    merged = plays.merge(catalogue, left_on="spotify_track_uri", right_on="track_id", how="left")
    assert merged.track_id.notna().all()
    assert (merged.master_metadata_track_name == merged.title).all()
    assert (merged.master_metadata_album_artist_name == merged.artist).all()
    assert (merged.master_metadata_album_album_name == merged.album).all()
    assert (plays.ms <= merged.duration_ms.astype(int)).all() and (plays.ms > 0).all()
    assert set(plays.platform) <= set(PLATFORMS)
    assert set(plays.reason_start) <= set(REASONS_START)
    assert set(plays.reason_end) <= set(REASONS_END)
    for col in ("shuffle", "skipped", "offline"):
        assert set(plays[col]) <= {"true", "false"}, col
    assert plays.conn_country.str.fullmatch(r"[A-Z]{2}").all()


def test_timestamps_lie_in_their_span_day_and_are_sorted(plays) -> None:
    assert plays.ts.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    start = dt.date(2024, 3, 1)
    for day, group in plays.groupby("day"):
        date = (start + dt.timedelta(days=int(day))).isoformat()
        assert group.ts.str.startswith(date + "T").all(), day
        assert group.ts.is_monotonic_increasing, day


def test_a_users_plays_do_not_overlap_in_time(plays) -> None:
    ts = pd.to_datetime(plays.ts).astype("int64") // 10**9
    df = plays.assign(end=ts, start=ts - plays.ms / 1000.0)
    df = df.sort_values(["username", "end"], kind="stable")
    same = df.username.values[1:] == df.username.values[:-1]
    # Timestamps are truncated to whole seconds, hence the 1 s tolerance.
    assert (df.start.values[1:][same] >= df.end.values[:-1][same] - 1.0).mean() > 0.999


# ------------------------------------------------------------------------------------------
# Behaviour


def test_skips_are_short_and_flagged(plays) -> None:
    human = plays[~plays.bot]
    skipped = human[human.skipped == "true"]
    assert 0.08 < len(skipped) / len(human) < 0.4
    assert (skipped.reason_end == "fwdbtn").all()
    assert (skipped.ms < 30_000).mean() > 0.85
    done = human[human.reason_end == "trackdone"]
    assert (done.skipped == "false").all() and (done.ms >= 30_000).all()
    assert (human.reason_end == "endplay").any()


def test_bots_loop_a_few_tracks_around_the_clock(plays) -> None:
    bots = plays[plays.bot]
    assert bots.ms.between(30_000, 31_500).all()
    assert (bots.skipped == "false").all() and (bots.reason_end == "trackdone").all()
    hours = pd.to_datetime(bots.ts).dt.hour
    per_day = bots.assign(hour=hours).groupby(["username", "day"]).agg(
        hours=("hour", "nunique"), n=("ts", "size")
    )
    assert (per_day.hours == 24).mean() > 0.9
    assert per_day.n.mean() >= 30
    assert (bots.groupby("username").spotify_track_uri.nunique() <= 6).all()
    # A simple rule recovers the bots exactly, heavy human listeners notwithstanding.
    in_band = plays.assign(band=plays.ms.between(30_000, 31_500)).groupby("username").agg(
        band=("band", "mean"), n=("band", "size")
    )
    flagged = set(in_band[(in_band.band > 0.9) & (in_band.n > 100)].index)
    assert flagged == set(bots.username)
    # Volume alone does not give bots away: heavy human listeners play as much.
    heaviest_human = plays[~plays.bot].groupby("username").size().max()
    assert heaviest_human >= bots.groupby("username").size().median()


def test_popularity_is_heavy_tailed(plays, catalogue) -> None:
    counts = plays[~plays.bot].spotify_track_uri.value_counts()
    share = counts.cumsum() / counts.sum()
    # Under uniform listening the top 1% / 10% of tracks would get 1% / 10% of the plays.
    assert share.iloc[len(catalogue) // 100 - 1] > 0.06
    assert share.iloc[len(catalogue) // 10 - 1] > 0.3
    # Zipf-like decay: rank 10 beats rank 100, which beats rank 500, by wide margins.
    assert counts.iloc[9] > 2 * counts.iloc[99] and counts.iloc[99] > 2.5 * counts.iloc[499]


def test_new_releases_are_not_played_before_release_and_get_plays_after(plays, catalogue) -> None:
    start = pd.Timestamp("2024-03-01")
    release = pd.to_datetime(catalogue.set_index("track_id").release_date)
    play_date = start + pd.to_timedelta(plays.day, unit="D")
    rel = release.reindex(plays.spotify_track_uri).values
    assert (rel <= play_date.values).all()
    new = release[release > start]
    assert len(new) > 0
    assert plays.spotify_track_uri.isin(new.index).sum() > len(new)


def test_consecutive_plays_are_coherent(plays) -> None:
    human = plays[~plays.bot].sort_values(["username", "ts"], kind="stable")
    same_user = human.username.values[1:] == human.username.values[:-1]
    artist = human.master_metadata_album_artist_name.values
    same_artist = (artist[1:] == artist[:-1])[same_user].mean()
    chance = (human.master_metadata_album_artist_name.value_counts(normalize=True) ** 2).sum()
    assert same_artist > 5 * chance


def test_listening_history_predicts_future_plays_better_than_popularity(plays) -> None:
    """The signal a recommender must learn exists: each user's own earlier top tracks beat the
    global top tracks on the last days (both ranked from earlier days, bots excluded)."""
    human = plays[~plays.bot]
    cut = human.day.max() - 3
    train, test = human[human.day < cut], human[human.day >= cut]
    popular = list(train.spotify_track_uri.value_counts().index[:50])
    pop_recall = test.spotify_track_uri.isin(popular).mean()

    counts = train.groupby(["username", "spotify_track_uri"]).size().rename("n").reset_index()
    counts = counts.sort_values(["username", "n"], ascending=[True, False], kind="stable")
    personal = {
        user: list(g.spotify_track_uri.iloc[:50]) for user, g in counts.groupby("username")
    }
    hits = 0
    for user, g in test.groupby("username"):
        top = personal.get(user, [])
        # Pad short histories with popular tracks so every user gets 50 recommendations.
        top = top + [t for t in popular if t not in set(top)][: 50 - len(top)]
        hits += g.spotify_track_uri.isin(top).sum()
    personal_recall = hits / len(test)
    assert personal_recall > 2.0 * pop_recall, (personal_recall, pop_recall)


def test_time_of_day_shifts_what_is_played(tiny, plays, catalogue) -> None:
    """Context carries signal: local late-night plays are calmer than evening plays."""
    _, out = tiny
    users = _read(os.path.join(out, "users.csv")).set_index("user_id")
    offsets = {c[0]: c[1] for c in COUNTRIES}
    human = plays[~plays.bot]
    utc_hour = pd.to_datetime(human.ts).dt.hour + pd.to_datetime(human.ts).dt.minute / 60
    local = (utc_hour + users.country.reindex(human.username).map(offsets).values) % 24
    energy = human.spotify_track_uri.map(catalogue.set_index("track_id").energy.astype(float))
    night = energy[(local >= 1) & (local < 5)].mean()
    evening = energy[(local >= 17) & (local < 20)].mean()
    assert night < evening - 0.01


def test_friends_are_groups_of_two_to_five_humans_with_closer_tastes(tiny) -> None:
    from crossfade.components.listening_data.simulator.friends import friend_groups
    from crossfade.components.listening_data.simulator.world import build_world
    world = build_world(PRESETS["tiny"], 0)
    groups = friend_groups(world)
    members = np.concatenate(groups)
    assert groups and all(2 <= len(g) <= 5 for g in groups)
    assert len(set(members)) == len(members)  # nobody in two groups
    assert not world.users.is_bot[members].any()
    vec = world.users.vec / np.linalg.norm(world.users.vec, axis=1, keepdims=True)
    within = np.mean([vec[a] @ vec[b] for g in groups for a in g for b in g if a < b])
    rng = np.random.default_rng(0)
    strangers = rng.choice(world.users.humans, size=(2000, 2))
    assert within > np.mean(np.sum(vec[strangers[:, 0]] * vec[strangers[:, 1]], axis=1)) + 0.1
    _, out = tiny
    friends = _read(os.path.join(out, "friends.csv"))
    assert list(friends.columns) == ["user_id", "friend_id"]
    pairs = set(zip(friends.user_id, friends.friend_id, strict=True))
    assert pairs == {(b, a) for a, b in pairs}  # both directions
    assert len(pairs) == sum(len(g) * (len(g) - 1) for g in groups)
