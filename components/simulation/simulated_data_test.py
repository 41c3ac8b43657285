"""SimulatedData.load on a generated micro folder, and its refusals of folders it cannot trust."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from crossfade.components import testing_simulation
from crossfade.components.simulation.simulated_data import (
    RECENT_TRACKS,
    NotSimulatedError,
    SimulatedData,
)

# More days than the chart's week, so that the window matters.
_MICRO = testing_simulation.micro(num_days=9)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return testing_simulation.micro_folder(tmp_path_factory, _MICRO)


@pytest.fixture(scope="module")
def data(folder) -> SimulatedData:
    return SimulatedData.load(folder)


@pytest.fixture(scope="module")
def plays(folder) -> pd.DataFrame:
    """Every play of the folder, read independently: ids, day, ms and whether a bot played."""
    frames = []
    for day, path in enumerate(sorted(glob.glob(os.path.join(folder, "plays", "*", "plays.csv")))):
        frames.append(pd.read_csv(path, dtype=str, keep_default_na=False).assign(day=day))
    df = pd.concat(frames, ignore_index=True)
    df["ms"] = df.ms_played.astype(np.int64)
    bots = set(pd.read_csv(os.path.join(folder, "truth", "bots.csv"), dtype=str).user_id)
    df["bot"] = df.username.isin(bots)
    return df


@pytest.fixture
def copy(folder, tmp_path) -> str:
    target = str(tmp_path / "copy")
    shutil.copytree(folder, target)
    return target


def _human_streams(plays: pd.DataFrame) -> pd.DataFrame:
    return plays[(plays.ms >= 30_000) & ~plays.bot]


def _digests(folder: str) -> dict[str, tuple[str, int]]:
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def test_world_matches_the_folders_ids_and_days(folder, data) -> None:
    catalogue = pd.read_csv(os.path.join(folder, "catalogue.csv"), dtype=str,
                            keep_default_na=False)
    users = pd.read_csv(os.path.join(folder, "users.csv"), dtype=str, keep_default_na=False)
    assert list(data.world.catalogue.track_id) == list(catalogue.track_id)
    assert list(data.world.users.user_id) == list(users.user_id)
    assert data.num_days == _MICRO.num_days
    assert data.data_dir == folder


def test_recent_tracks_are_human_streams_most_recent_first(data, plays) -> None:
    streams = _human_streams(plays).sort_values("ts", kind="stable")
    track_ids = data.world.catalogue.track_id
    user_ids = list(data.world.users.user_id)
    checked = 0
    for user, group in streams.groupby("username"):
        expected = list(group.spotify_track_uri[::-1][:RECENT_TRACKS])
        row = data.recent[user_ids.index(user)]
        assert list(track_ids[row[row >= 0]]) == expected
        assert (row[len(expected):] == -1).all()
        checked += 1
    assert checked > 50
    # Some listener has more streams than the query holds: the cut is tested too.
    assert streams.username.value_counts().max() > RECENT_TRACKS


def test_bots_have_no_recent_tracks_although_they_streamed(data, plays) -> None:
    assert (plays.bot & (plays.ms >= 30_000)).sum() > 0
    assert len(data.world.users.bots) > 0
    assert (data.recent[data.world.users.bots] == -1).all()
    assert not np.isin(data.humans, data.world.users.bots).any()


def test_chart_counts_human_streams_of_the_last_week(data, plays) -> None:
    def chart(frame: pd.DataFrame) -> np.ndarray:
        counts = frame.spotify_track_uri.value_counts()
        index = pd.Index(data.world.catalogue.track_id).get_indexer(counts.index)
        return index[np.lexsort((index, -counts.to_numpy()))]

    streams = plays[plays.ms >= 30_000]
    humans = _human_streams(plays)
    week = humans[humans.day >= data.num_days - 7]
    np.testing.assert_array_equal(data.chart, chart(week))
    # The fixture is strong enough: all days, or bots counted, would rank differently.
    assert not np.array_equal(data.chart, chart(humans))
    assert not np.array_equal(data.chart, chart(streams[streams.day >= data.num_days - 7]))


def test_history_is_every_human_stream(data, plays) -> None:
    streams = _human_streams(plays)
    users, tracks = data.history
    user_ids, track_ids = data.world.users.user_id, data.world.catalogue.track_id
    assert sorted(zip(user_ids[users], track_ids[tracks], strict=True)) == sorted(
        zip(streams.username, streams.spotify_track_uri, strict=True))


def test_load_modifies_nothing(copy) -> None:
    before = _digests(copy)
    SimulatedData.load(copy)
    assert _digests(copy) == before


def test_refuses_a_folder_without_manifest(copy) -> None:
    os.remove(os.path.join(copy, "manifest.json"))
    with pytest.raises(NotSimulatedError, match="manifest.json: no readable simulator manifest"):
        SimulatedData.load(copy)


def test_refuses_another_format(copy) -> None:
    with open(os.path.join(copy, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump({"format": "lastfm-hetrec"}, handle)
    with pytest.raises(NotSimulatedError, match="manifest.json: format 'lastfm-hetrec'"):
        SimulatedData.load(copy)


def test_refuses_an_edited_catalogue_row(copy) -> None:
    path = os.path.join(copy, "catalogue.csv")
    catalogue = pd.read_csv(path, dtype=str, keep_default_na=False)
    catalogue.loc[3, "track_id"] = "spotify:track:edited"
    catalogue.to_csv(path, index=False)
    with pytest.raises(NotSimulatedError,
                       match=r"catalogue.csv: row 5, field track_id: 'spotify:track:edited'"):
        SimulatedData.load(copy)


def test_refuses_a_catalogue_with_a_missing_row(copy) -> None:
    path = os.path.join(copy, "catalogue.csv")
    catalogue = pd.read_csv(path, dtype=str, keep_default_na=False)
    catalogue.iloc[:-1].to_csv(path, index=False)
    with pytest.raises(NotSimulatedError, match=r"catalogue.csv: 399 rows.* writes 400"):
        SimulatedData.load(copy)


@pytest.mark.parametrize("field, value", [("spotify_track_uri", "spotify:track:unknown"),
                                          ("username", "nobody")])
def test_refuses_an_unknown_id_in_a_plays_file(copy, field, value) -> None:
    path = os.path.join(copy, "plays", "span-0002", "plays.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[1, field] = value
    frame.to_csv(path, index=False)
    with pytest.raises(NotSimulatedError, match=rf"span-0002.plays.csv: row 3, field {field}"):
        SimulatedData.load(copy)


def test_refuses_a_folder_without_plays(copy) -> None:
    shutil.rmtree(os.path.join(copy, "plays"))
    with pytest.raises(NotSimulatedError, match="no plays/span-"):
        SimulatedData.load(copy)
