"""The closed loop's pieces that need no training: served lists as plays, a day appended to a
lineage's data, lineage preparation and the loop's settings."""
from __future__ import annotations

import collections
import datetime as dt
import hashlib
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.layout import PLAY_COLUMNS
from crossfade.components.listening_data.simulator.bots import bot_day
from crossfade.components.listening_data.simulator.environment import Responses
from crossfade.components.listening_data.simulator.generator import span_dir
from crossfade.components.listening_data.simulator.sessions import human_day
from crossfade.components.listening_data.simulator.vocabulary import (
    REASON_END_INDEX,
    REASON_START_INDEX,
)
from crossfade.components.simulation import experiment
from crossfade.components.simulation.policies import ChartPolicy, PolicyError, PolicySpec, Requests
from crossfade.components.simulation.simulated_data import SimulatedData
from crossfade.components.testing_data import file_tree
from crossfade.pipeline.simulation import closed_loop

_MICRO = testing_simulation.MICRO


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return testing_simulation.micro_folder(tmp_path_factory, _MICRO)


@pytest.fixture(scope="module")
def data(folder) -> SimulatedData:
    return SimulatedData.load(folder)


def _digests(folder: str) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in file_tree(folder).items()}


def _midnight(data: SimulatedData, day: int) -> int:
    date = data.world.start + dt.timedelta(days=day)
    return int(dt.datetime.combine(date, dt.time(), tzinfo=dt.timezone.utc).timestamp())


# -- served plays ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(data):
    """Three listeners' lists: 3 heard (one skipped), 1 heard, and 2 heard near midnight."""
    day = data.num_days
    users = data.humans[:3]
    midnight = _midnight(data, day)
    requests = Requests(day=day, users=users, user_ids=data.world.users.user_id[users],
                        recent=data.recent[users],
                        timestamps=np.array([3600, 7200, 86_300]) + midnight,
                        platforms=np.array(["web"] * 3, dtype=object), k=3)
    tracks = np.array([[10, 11, 12], [13, 14, -1], [15, 16, 17]])
    ms = np.array([[200_000, 5_000, 180_000], [100_000, 0, 0], [60_000, 90_000, 0]])
    heard = np.array([[True, True, True], [True, False, False], [True, True, False]])
    skipped = np.array([[False, True, False], [False, False, False], [False, False, False]])
    responses = Responses(heard=heard, streamed=ms >= 30_000, skipped=skipped, ms_played=ms,
                          liked=np.zeros((3, 3), bool),
                          skip_probability=np.where(heard, 0.5, np.nan))
    return requests, tracks, responses, closed_loop.served_plays(data, requests, tracks,
                                                                  responses)


def test_served_plays_end_one_after_another_and_stop_at_midnight(planted) -> None:
    *_, plays = planted
    # Play end times (seconds after midnight): each play starts 0.5 s after the previous ends.
    # The third listener's second play would end at 86_450.5: the next day, so not here.
    np.testing.assert_allclose(plays.second, [3800.0, 3805.5, 3986.0, 7300.0, 86_360.0])
    np.testing.assert_array_equal(plays.track, [10, 11, 12, 13, 15])
    np.testing.assert_array_equal(plays.ms, [200_000, 5_000, 180_000, 100_000, 60_000])
    np.testing.assert_array_equal(plays.order, [0, 1, 2, 3, 4])


def test_served_plays_reasons_and_flags(data, planted) -> None:
    requests, *_, plays = planted
    rs, re_ = REASON_START_INDEX, REASON_END_INDEX
    assert [int(r) for r in plays.reason_start] == [rs["clickrow"], rs["trackdone"],
                                                    rs["fwdbtn"], rs["clickrow"],
                                                    rs["clickrow"]]
    assert [int(r) for r in plays.reason_end] == [re_["trackdone"], re_["fwdbtn"],
                                                  re_["trackdone"], re_["trackdone"],
                                                  re_["trackdone"]]
    np.testing.assert_array_equal(plays.skipped, [False, True, False, False, False])
    assert not plays.shuffle.any() and not plays.offline.any()
    users = requests.users[[0, 0, 0, 1, 2]]
    np.testing.assert_array_equal(plays.user, users)
    np.testing.assert_array_equal(plays.country, data.world.users.country[users])
    np.testing.assert_array_equal(plays.platform, experiment.main_platform(data, users))


# -- a day appended to a lineage's data ------------------------------------------------------


@pytest.fixture
def lineage_copy(folder, tmp_path) -> str:
    target = str(tmp_path / "lineage-data")
    shutil.copytree(folder, target)
    return target


def _served_day(data: SimulatedData):
    settings = experiment.SimulationSettings(k=6)
    arm = experiment.new_arm(data, ChartPolicy(data.chart), settings)
    return experiment.run_day(data, arm, data.humans, data.num_days, settings.k)


def test_append_day_writes_a_span_that_load_reads_back(data, lineage_copy) -> None:
    log = _served_day(data)
    written = closed_loop.append_day(data, lineage_copy, log)
    path = os.path.join(span_dir(lineage_copy, data.num_days), "plays.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == PLAY_COLUMNS and len(frame) == written
    date = (data.world.start + dt.timedelta(days=data.num_days)).isoformat()
    assert frame.ts.str.startswith(date + "T").all()
    assert frame.ts.is_monotonic_increasing
    w = data.world
    organic = human_day(w, log.day, (w.start + dt.timedelta(days=log.day)).weekday())
    bots = bot_day(w.seed, log.day, w.users, w.bots)
    served = closed_loop.served_plays(data, log.requests, log.tracks, log.responses)
    assert written == len(organic.user) + len(bots.user) + len(served.user)
    assert len(served.user) > 0
    # Every served play is a row of the file (user, track, ms).
    rows = collections.Counter(zip(frame.username, frame.spotify_track_uri,
                                   frame.ms_played.astype(int), strict=True))
    wanted = collections.Counter(zip(w.users.user_id[served.user],
                                     w.catalogue.track_id[served.track], served.ms.tolist(),
                                     strict=True))
    assert not wanted - rows
    grown = SimulatedData.load(lineage_copy)
    assert grown.num_days == data.num_days + 1
    assert len(grown.history[0]) > len(data.history[0])


def test_append_day_adds_the_days_new_likes_organic_and_served(data, lineage_copy) -> None:
    likes_path = os.path.join(lineage_copy, "likes.csv")
    before = pd.read_csv(likes_path, dtype=str, keep_default_na=False)
    log = _served_day(data)
    closed_loop.append_day(data, lineage_copy, log)
    after = pd.read_csv(likes_path, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(after.iloc[:len(before)], before)  # earlier likes kept
    added = after.iloc[len(before):]
    date = (data.world.start + dt.timedelta(days=data.num_days)).isoformat()
    assert len(added) > 0 and added.ts.str.startswith(date + "T").all()
    assert not after.duplicated(["user_id", "track_id"]).any()  # a track is saved once
    w = data.world
    served = closed_loop.served_plays(data, log.requests, log.tracks, log.responses)
    liked = closed_loop.served_like_candidates(served, log.responses)
    assert 0 < len(liked.user) <= int(log.responses.liked.sum())  # minus plays past midnight
    pairs = set(zip(after.user_id, after.track_id, strict=True))
    assert all((w.users.user_id[u], w.catalogue.track_id[t]) in pairs
               for u, t in zip(liked.user, liked.track, strict=True))
    assert not os.path.exists(likes_path + ".partial")


def test_append_day_never_overwrites_a_span(data, lineage_copy) -> None:
    log = _served_day(data)
    closed_loop.append_day(data, lineage_copy, log)
    before = _digests(lineage_copy)
    with pytest.raises(FileExistsError, match=f"already has day {data.num_days}"):
        closed_loop.append_day(data, lineage_copy, log)
    assert _digests(lineage_copy) == before


# -- lineages and settings -------------------------------------------------------------------

SPECS = [PolicySpec("model"), PolicySpec("model", {"explore": 0.1})]


def test_prepare_copies_the_data_for_every_lineage(folder, tmp_path) -> None:
    before = _digests(folder)
    out = str(tmp_path / "out")
    lineages = closed_loop.prepare(folder, out, SPECS, ["on", "off"])
    roots = sorted(os.path.relpath(ln.root, out) for ln in lineages)
    assert roots == sorted(os.path.join("loop", f"effects-{label}", name)
                           for label in ("on", "off") for name in ("model", "model_explore=0.1"))
    for lineage in lineages:
        assert _digests(lineage.data_dir) == before
        assert lineage.arm is None and not os.path.exists(lineage.output_dir)
    assert _digests(folder) == before


@pytest.mark.parametrize("source", ["chart", "random"])
def test_prepare_refuses_a_baseline_and_writes_nothing(folder, tmp_path, source) -> None:
    out = str(tmp_path / "out")
    with pytest.raises(PolicyError, match=f"{source!r}.*cannot be a policy of the loop"):
        closed_loop.prepare(folder, out, [SPECS[0], PolicySpec(source)], ["on"])
    assert not os.path.exists(out)


def test_prepare_never_writes_over_a_lineage(folder, tmp_path) -> None:
    out = str(tmp_path / "out")
    taken = os.path.join(out, "loop", "effects-on", "model_explore=0.1")
    os.makedirs(taken)
    with pytest.raises(FileExistsError, match="model_explore=0.1 exists"):
        closed_loop.prepare(folder, out, SPECS, ["on"])
    assert not os.path.exists(os.path.join(out, "loop", "effects-on", "model"))
    assert os.listdir(taken) == []


def test_loop_settings_need_a_round() -> None:
    with pytest.raises(ValueError, match="--rounds must be at least 1, not 0"):
        closed_loop.LoopSettings(rounds=0)
    assert closed_loop.LoopSettings(rounds=2).overrides == {}


def test_prepare_refuses_two_policies_of_one_name_and_writes_nothing(folder, tmp_path) -> None:
    out = str(tmp_path / "out")
    with pytest.raises(PolicyError, match="policies named twice"):
        closed_loop.prepare(folder, out, [SPECS[0], PolicySpec("model")], ["on"])
    assert not os.path.exists(out)
