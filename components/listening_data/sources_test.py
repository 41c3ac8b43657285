"""Readers of listening-data folders: layouts, canonical columns and located errors."""
import os

import numpy as np
import pytest

from crossfade.components import features
from crossfade.components.listening_data import play_checks, sources

SPOTIFY_HEADER = ("ts,username,platform,ms_played,conn_country,master_metadata_track_name,"
                  "master_metadata_album_artist_name,master_metadata_album_album_name,"
                  "spotify_track_uri,reason_start,reason_end,shuffle,skipped,offline")


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return str(path)


def _spotify_row(ts="2024-03-01T10:00:00Z", user="u1", ms="200000", uri="spotify:track:a",
                 skipped="false", platform="Android"):
    return (f"{ts},{user},{platform},{ms},se,\"Song, with comma\",Artist,Album,{uri},"
            f"clickrow,trackdone,false,{skipped},false")


def test_detect_layout(tmp_path):
    _write(tmp_path / "sim" / "plays" / "span-0001" / "plays.csv", SPOTIFY_HEADER + "\n")
    _write(tmp_path / "sim" / "catalogue.csv", "track_id\n")
    _write(tmp_path / "gen" / "interactions.csv", "user_id,item_id,timestamp\n")
    assert sources.detect_layout(str(tmp_path / "sim")) == sources.SIMULATOR
    assert sources.detect_layout(str(tmp_path / "gen")) == sources.GENERIC
    with pytest.raises(sources.InputDataError, match="no listening data"):
        sources.detect_layout(str(tmp_path))
    with pytest.raises(sources.InputDataError, match="does not exist"):
        sources.detect_layout(str(tmp_path / "missing"))


def test_simulator_folder_without_catalogue_is_an_error(tmp_path):
    _write(tmp_path / "plays" / "span-0001" / "plays.csv", SPOTIFY_HEADER + "\n")
    with pytest.raises(sources.InputDataError, match="catalogue.csv"):
        sources.detect_layout(str(tmp_path))


def test_spotify_plays_are_canonicalised(tmp_path):
    path = _write(tmp_path / "plays.csv", "\n".join([
        SPOTIFY_HEADER,
        _spotify_row(),
        _spotify_row(uri="", ms="5000"),  # a podcast episode: not a music play
        _spotify_row(ts="2024-03-01T10:05:00Z", ms="4000", skipped="true", uri="spotify:track:b"),
    ]) + "\n")
    plays = sources.read_spotify_plays(path)
    assert len(plays) == 2
    assert list(plays.track_id) == ["spotify:track:a", "spotify:track:b"]
    assert list(plays.ts) == [1709287200, 1709287500]
    assert list(plays.skipped) == [0, 1]
    assert list(plays.ms_played) == [200000, 4000]
    assert list(plays.platform) == ["android", "android"]
    assert list(plays.country) == ["SE", "SE"]


@pytest.mark.parametrize("row, field, message", [
    (_spotify_row(ts="yesterday"), "ts", "ISO-8601"),
    (_spotify_row(ms="lots"), "ms_played", "not a number"),
    (_spotify_row(ms="-5"), "ms_played", "negative"),
    (_spotify_row(skipped="maybe"), "skipped", "not a boolean"),
    (_spotify_row(user=""), "username", "empty value"),
])
def test_malformed_spotify_rows_name_file_row_and_field(tmp_path, row, field, message):
    path = _write(tmp_path / "plays.csv", "\n".join([SPOTIFY_HEADER, _spotify_row(), row]) + "\n")
    with pytest.raises(sources.InputDataError, match=message) as error:
        sources.read_spotify_plays(path)
    assert error.value.path == path and error.value.row == 2 and error.value.field == field
    assert f"{path}, row 2, field '{field}'" in str(error.value)


def test_missing_column_and_empty_files(tmp_path):
    path = _write(tmp_path / "a.csv", "ts,username,ms_played\n2024-03-01T10:00:00Z,u,1\n")
    with pytest.raises(sources.InputDataError, match="missing column") as error:
        sources.read_spotify_plays(path)
    assert error.value.field == "spotify_track_uri"
    with pytest.raises(sources.InputDataError, match="no rows"):
        sources.read_spotify_plays(_write(tmp_path / "b.csv", SPOTIFY_HEADER + "\n"))
    with pytest.raises(sources.InputDataError, match="empty"):
        sources.read_spotify_plays(_write(tmp_path / "c.csv", ""))


def test_plays_outside_the_catalogue_are_located(tmp_path):
    path = _write(tmp_path / "plays.csv", "\n".join(
        [SPOTIFY_HEADER, _spotify_row(), _spotify_row(uri="spotify:track:zzz")]) + "\n")
    with pytest.raises(sources.InputDataError, match="not in the catalogue") as error:
        sources.read_spotify_plays(path, known_tracks=np.array(["spotify:track:a"], object))
    assert (error.value.row, error.value.field) == (2, "spotify_track_uri")


def test_generic_interactions(tmp_path):
    path = _write(tmp_path / "interactions.csv",
                  "user_id,item_id,timestamp,weight\nu1,i1,100,2.5\nu2,i2,200,\n")
    plays = sources.read_generic_interactions(path)
    assert list(plays.user_id) == ["u1", "u2"]
    assert list(plays.ts) == [100, 200]
    np.testing.assert_allclose(plays.weight, [2.5, 1.0])
    bad = _write(tmp_path / "bad" / "interactions.csv",
                 "user_id,item_id,timestamp,weight\nu1,i1,100,1\nu1,i2,200,-1\n")
    with pytest.raises(sources.InputDataError, match="positive") as error:
        sources.read_generic_interactions(bad)
    assert (error.value.row, error.value.field) == (2, "weight")


def test_catalogue_columns_and_duplicates(tmp_path):
    path = _write(tmp_path / "catalogue.csv",
                  "track_id,artist,genres,tags,tempo,energy\n"
                  "t1,A,rock|pop,love|night|,120,0.5\n"
                  "t2,B,,,,\n")
    catalogue = sources.read_catalogue(path)
    assert list(catalogue.track_id) == ["t1", "t2"]
    assert list(catalogue.genres[0]) == ["rock", "pop", features.PAD_TOKEN]
    assert catalogue.tags.shape == (2, features.MAX_TAGS)
    assert catalogue.audio.shape == (2, len(features.AUDIO_DESCRIPTORS))
    assert catalogue.audio[0, 0] == 120 and catalogue.audio[1, 0] == 0.0
    duplicate = _write(tmp_path / "dup" / "catalogue.csv", "track_id\nt1\nt2\nt1\n")
    with pytest.raises(sources.InputDataError, match="duplicate") as error:
        sources.read_catalogue(duplicate)
    assert error.value.row == 3


def test_release_dates_in_days_since_the_epoch_at_each_precision(tmp_path):
    path = _write(tmp_path / "items.csv",
                  "item_id,release_date\ni1,1970-01-02\ni2,2015-11\ni3,2015\ni4,\n"
                  "i5,1969-12-31\n")
    days = sources.read_catalogue(path).release_day
    assert list(days) == [1, 16740, 16436, features.NO_RELEASE_DAY, -1]
    without = _write(tmp_path / "plain" / "items.csv", "item_id\ni1\n")
    assert list(sources.read_catalogue(without).release_day) == [features.NO_RELEASE_DAY]


@pytest.mark.parametrize("value", ["2015-13-01", "2020-02-30", "05/11/2015", "soon"])
def test_a_bad_release_date_is_located(tmp_path, value):
    path = _write(tmp_path / "catalogue.csv",
                  f"track_id,release_date\nt1,2015-11-05\nt2,{value}\n")
    with pytest.raises(sources.InputDataError, match="not a date") as error:
        sources.read_catalogue(path)
    assert (error.value.row, error.value.field) == (2, "release_date")
    assert value in str(error.value)


def test_generic_folder_without_items_uses_played_tracks(tmp_path):
    _write(tmp_path / "interactions.csv", "user_id,item_id,timestamp\nu,b,1\nu,a,2\nv,b,3\n")
    pattern = sources.catalogue_pattern(str(tmp_path), sources.GENERIC)
    assert pattern == sources.INTERACTIONS_FILE
    catalogue = sources.read_catalogue_source(str(tmp_path / pattern))
    assert list(catalogue.track_id) == ["a", "b"]


# A fixed run clock for the timestamp checks: 2024-03-10T00:00:00Z.
NOW = 1710028800


def _spotify_file(tmp_path, *rows):
    return _write(tmp_path / "plays.csv", "\n".join([SPOTIFY_HEADER, *rows]) + "\n")


@pytest.mark.parametrize("ts, reason", [
    ("2099-01-01T00:00:00Z", "after the run's clock"),
    ("2024-03-11T01:00:00Z", "after the run's clock"),  # beyond the 1-day tolerance
    ("1970-01-01T00:00:00Z", "before"),
    ("1999-12-31T23:59:59Z", "before"),
])
def test_out_of_range_spotify_timestamps_are_rejected_with_location(tmp_path, ts, reason):
    path = _spotify_file(tmp_path, _spotify_row(), _spotify_row(ts=ts))
    with pytest.raises(sources.InputDataError, match=reason) as error:
        sources.read_plays_counted(path, sources.SIMULATOR, now=NOW)
    assert (error.value.path, error.value.row, error.value.field) == (path, 2, "ts")


def test_timestamps_within_the_clock_tolerance_are_kept(tmp_path):
    path = _spotify_file(tmp_path, _spotify_row(), _spotify_row(ts="2024-03-10T20:00:00Z"))
    plays, counts = sources.read_plays_counted(path, sources.SIMULATOR, now=NOW)
    assert len(plays) == 2 and counts[play_checks.OUT_OF_RANGE_PLAYS] == 0


def test_out_of_range_generic_timestamps_are_rejected_or_dropped_and_counted(tmp_path):
    path = _write(tmp_path / "interactions.csv",
                  "user_id,item_id,timestamp\nu1,i1,1709287200\nu1,i2,4070908800\n"
                  "u2,i1,0\nu2,i2,1709287300\n")
    with pytest.raises(sources.InputDataError, match="after the run's clock") as error:
        sources.read_plays_counted(path, sources.GENERIC, now=NOW)
    assert (error.value.row, error.value.field) == (2, "timestamp")
    plays, counts = sources.read_plays_counted(path, sources.GENERIC, now=NOW,
                                               timestamp_policy=play_checks.DROP)
    assert list(plays.track_id) == ["i1", "i2"] and list(plays.ts) == [1709287200, 1709287300]
    assert counts[play_checks.OUT_OF_RANGE_PLAYS] == 2


def test_generic_plays_without_timestamps_pass_the_timestamp_check(tmp_path):
    path = _write(tmp_path / "interactions.csv", "user_id,item_id\nu1,i1\nu1,i2\n")
    plays, counts = sources.read_plays_counted(path, sources.GENERIC, now=NOW)
    assert list(plays.ts) == [0, 0] and counts[play_checks.OUT_OF_RANGE_PLAYS] == 0


def test_unknown_timestamp_policy_is_an_error():
    with pytest.raises(ValueError, match="timestamp_policy"):
        play_checks.check_timestamp_policy("ignore")


@pytest.mark.parametrize("row, field", [
    (_spotify_row(user='"u\n1"'), "username"),
    (_spotify_row(uri='"spotify:track:a\r"'), "spotify_track_uri"),
    (_spotify_row(platform="and\x1broid"), "platform"),
    (_spotify_row(user="u\x1f1"), "username"),
])
def test_control_characters_in_spotify_ids_are_located(tmp_path, row, field):
    path = _spotify_file(tmp_path, _spotify_row(), row)
    with pytest.raises(sources.InputDataError, match="control character") as error:
        sources.read_spotify_plays(path)
    assert (error.value.row, error.value.field) == (2, field)


@pytest.mark.parametrize("text, field", [
    ('user_id,item_id\nu1,i1\n"u\n2",i1\n', "user_id"),
    ('user_id,item_id\nu1,i1\nu2,"i\n1"\n', "item_id"),
])
def test_control_characters_in_generic_ids_are_located(tmp_path, text, field):
    path = _write(tmp_path / "interactions.csv", text)
    with pytest.raises(sources.InputDataError, match="control character") as error:
        sources.read_generic_interactions(path)
    assert (error.value.row, error.value.field) == (2, field)


@pytest.mark.parametrize("name, text, field", [
    ("catalogue.csv", 'track_id,artist\nt1,A\n"t\n2",B\n', "track_id"),
    ("items.csv", 'item_id,artist\ni1,A\ni2,"B\nC"\n', "artist"),
    ("items.csv", 'item_id,genres\ni1,rock\ni2,"pop|ja\nzz"\n', "genres"),
    ("catalogue.csv", 'track_id,tags\nt1,x\nt2,"lo\tve"\n', "tags"),
])
def test_control_characters_in_catalogue_ids_are_located(tmp_path, name, text, field):
    path = _write(tmp_path / name, text)
    with pytest.raises(sources.InputDataError, match="control character") as error:
        sources.read_catalogue(path)
    assert (error.value.row, error.value.field) == (2, field)


def _write_bytes(path, content: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    return str(path)


@pytest.mark.parametrize("name, content, row, field", [
    ("catalogue.csv", b"track_id,title\nt1,H\xc3\xa9llo\nt2,Caf\xe9\n", 2, "title"),
    ("items.csv", b"item_id,artist\ni1,A\ni2,B\ni3,Bj\xf6rk\n", 3, "artist"),
    ("interactions.csv", b"user_id,item_id\nu1,i1\nu\xe92,i1\n", 2, "user_id"),
])
def test_non_utf8_bytes_are_located(tmp_path, name, content, row, field):
    path = _write_bytes(tmp_path / name, content)
    read = sources.read_generic_interactions if name == "interactions.csv" else \
        sources.read_catalogue
    with pytest.raises(sources.InputDataError, match="not UTF-8") as error:
        read(path)
    assert (error.value.row, error.value.field) == (row, field)


def test_non_utf8_header_is_located(tmp_path):
    path = _write_bytes(tmp_path / "interactions.csv", b"user_id,item_id,na\xefve\nu1,i1,x\n")
    with pytest.raises(sources.InputDataError, match="not UTF-8") as error:
        sources.has_timestamps(str(tmp_path), sources.GENERIC)
    assert error.value.path == path
    with pytest.raises(sources.InputDataError, match="not UTF-8"):
        sources.read_generic_interactions(path)


@pytest.mark.parametrize("missing, field", [(1, "offline"), (4, "reason_end")])
def test_truncated_row_is_located(tmp_path, missing, field):
    last = _spotify_row(uri="spotify:track:b").rsplit(",", missing)[0]  # ends before `field`
    path = _write(tmp_path / "plays.csv", "\n".join([SPOTIFY_HEADER, _spotify_row(), last]))
    with pytest.raises(sources.InputDataError, match="fewer fields than the header") as error:
        sources.read_spotify_plays(path)
    assert (error.value.row, error.value.field) == (2, field)


def test_truncated_generic_row_is_located(tmp_path):
    path = _write(tmp_path / "interactions.csv",
                  "user_id,item_id,timestamp,weight\nu1,i1,100,\nu1,i2,200")
    with pytest.raises(sources.InputDataError, match="fewer fields") as error:
        sources.read_generic_interactions(path)
    assert (error.value.row, error.value.field) == (2, "weight")


def test_exact_duplicate_plays_are_dropped_and_counted(tmp_path):
    path = _spotify_file(tmp_path, _spotify_row(), _spotify_row(), _spotify_row(ms="100"),
                         _spotify_row(), _spotify_row(ts="2024-03-01T10:03:00Z", ms="bad"))
    with pytest.raises(sources.InputDataError) as error:  # rows keep their file numbers
        sources.read_plays_counted(path, sources.SIMULATOR, now=NOW)
    assert (error.value.row, error.value.field) == (5, "ms_played")
    path = _spotify_file(tmp_path, _spotify_row(), _spotify_row(), _spotify_row(ms="100"),
                         _spotify_row())
    plays, counts = sources.read_plays_counted(path, sources.SIMULATOR, now=NOW)
    assert list(plays.ms_played) == [200000, 100]
    assert counts[play_checks.DUPLICATE_PLAYS] == 2
    assert len(sources.read_plays(path, sources.SIMULATOR)) == 2
    assert len(sources.read_spotify_plays(path)) == 4  # row validation only (importers)


def test_generic_duplicates_count_only_with_timestamps(tmp_path):
    timed = _write(tmp_path / "a" / "interactions.csv",
                   "user_id,item_id,timestamp\nu1,i1,1709287200\nu1,i1,1709287200\n")
    plays, counts = sources.read_plays_counted(timed, sources.GENERIC, now=NOW)
    assert len(plays) == 1 and counts[play_checks.DUPLICATE_PLAYS] == 1
    # Without timestamps repeated rows are repeated plays, not copies: all are kept.
    untimed = _write(tmp_path / "b" / "interactions.csv", "user_id,item_id\nu1,i1\nu1,i1\n")
    plays, counts = sources.read_plays_counted(untimed, sources.GENERIC, now=NOW)
    assert len(plays) == 2 and counts[play_checks.DUPLICATE_PLAYS] == 0


def test_rows_after_dropped_podcasts_keep_their_file_row_numbers(tmp_path):
    path = _spotify_file(tmp_path, _spotify_row(), _spotify_row(uri=""),
                         _spotify_row(ms="lots"))
    with pytest.raises(sources.InputDataError) as error:
        sources.read_spotify_plays(path)
    assert error.value.row == 3


def test_likes_with_and_without_times_keep_each_pairs_earliest(tmp_path):
    path = _write(tmp_path / "likes.csv", "user_id,track_id,ts\n"
                  "u1,spotify:track:a,2024-03-02T10:00:00Z\n"
                  "u1,spotify:track:a,2024-03-01T10:00:00Z\n"
                  "u2,spotify:track:a,\n"
                  "u2,spotify:track:a,2024-03-01T10:00:00Z\n"
                  "u1,spotify:track:b,2024-03-05T00:00:00Z\n")
    likes = sources.read_likes(path, np.array(["spotify:track:a", "spotify:track:b"], object))
    assert likes.user_id.tolist() == ["u1", "u1", "u2"]
    assert likes.track_id.tolist() == ["spotify:track:a", "spotify:track:b", "spotify:track:a"]
    assert likes.ts.tolist() == [1709287200, 1709596800, sources.NO_TIME]


def test_likes_without_a_ts_column_and_header_only_files(tmp_path):
    untimed = sources.read_likes(_write(tmp_path / "a.csv", "user_id,track_id\nu1,t\n"))
    assert untimed.ts.tolist() == [sources.NO_TIME]
    assert len(sources.read_likes(_write(tmp_path / "b.csv", "user_id,track_id,ts\n"))) == 0


@pytest.mark.parametrize("row, field, message", [
    ("u1,spotify:track:zz,2024-03-01T10:00:00Z", "track_id", "not in the catalogue"),
    ("u1,spotify:track:a,yesterday", "ts", "not an ISO-8601 timestamp"),
    ("u1,spotify:track:a,1999-12-31T10:00:00Z", "ts", "like before 2000-01-01"),
    (",spotify:track:a,2024-03-01T10:00:00Z", "user_id", "empty value"),
])
def test_bad_likes_name_file_row_and_field(tmp_path, row, field, message):
    path = _write(tmp_path / "likes.csv",
                  "user_id,track_id,ts\nu1,spotify:track:a,\n" + row + "\n")
    with pytest.raises(sources.InputDataError, match=message) as error:
        sources.read_likes(path, np.array(["spotify:track:a"], object))
    assert f"{path}, row 2, field '{field}'" in str(error.value)


def test_likes_are_read_from_simulator_folders_only(tmp_path):
    _write(tmp_path / "likes.csv", "user_id,track_id,ts\n")
    assert sources.likes_path(str(tmp_path), sources.SIMULATOR) == str(tmp_path / "likes.csv")
    assert sources.likes_path(str(tmp_path), sources.GENERIC) is None
    assert sources.likes_path(str(tmp_path / "none"), sources.SIMULATOR) is None
