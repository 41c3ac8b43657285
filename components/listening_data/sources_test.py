"""Readers of listening-data folders: layouts, canonical columns and located errors."""
import os

import numpy as np
import pytest

from crossfade.components import features
from crossfade.components.listening_data import sources

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


def test_generic_folder_without_items_uses_played_tracks(tmp_path):
    _write(tmp_path / "interactions.csv", "user_id,item_id,timestamp\nu,b,1\nu,a,2\nv,b,3\n")
    pattern = sources.catalogue_pattern(str(tmp_path), sources.GENERIC)
    assert pattern == sources.INTERACTIONS_FILE
    catalogue = sources.read_catalogue_source(str(tmp_path / pattern))
    assert list(catalogue.track_id) == ["a", "b"]
