"""Data set importers: exact outputs, located errors, privacy and all-or-nothing replacement."""
import json
import os
import pathlib
import time

import numpy as np
import pytest

from crossfade.components import features
from crossfade.components.listening_data import importers, layout, pseudonyms, sources
from crossfade.components.testing_data import file_tree

REPO = pathlib.Path(__file__).resolve().parents[2]
REAL_LASTFM_DIR = os.environ.get(
    "CROSSFADE_LASTFM_DIR", str(REPO.parent / "shared" / "datasets" / "hetrec2011-lastfm-2k"))


def _write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


# --- lastfm-hetrec -------------------------------------------------------------------------

def _tsv(*rows):
    return "".join("\t".join(str(value) for value in row) + "\n" for row in rows)


LASTFM = {
    # Artist 10 is written before 3: the output must order ids numerically, not as text.
    "artists.dat": _tsv(("id", "name", "url", "pictureURL"),
                        (1, '"Weird Al" Yankovic', "http://www.last.fm/music/1", ""),
                        (2, "Earth, Wind & Fire", "", ""),
                        (10, "buried|cable", "", ""),
                        (3, "Never Played", "", "")),
    "user_artists.dat": _tsv(("userID", "artistID", "weight"),
                             (10, 2, 5), (2, 10, 7), (2, 1, 300)),
    # Latin-1, as the real tags.dat: "tropicália" is the single byte 0xE1 there.
    "tags.dat": _tsv(("tagID", "tagValue"), (1, "rock"), (2, "tropicália"), (3, "funk|soul"),
                     (4, "zzz")).encode("latin-1"),
    "user_taggedartists.dat": _tsv(("userID", "artistID", "tagID", "day", "month", "year"),
                                   (2, 2, 4, 1, 4, 2009), (2, 2, 1, 1, 4, 2009),
                                   (10, 2, 1, 1, 4, 2009), (2, 2, 2, 1, 4, 2009),
                                   (2, 2, 3, 1, 4, 2009),
                                   (2, 99, 1, 1, 4, 2009),  # unknown artist: dropped
                                   (2, 1, 77, 1, 4, 2009)),  # unknown tag: dropped
    "user_friends.dat": _tsv(("userID", "friendID"), (10, 2), (2, 10), (2, 55)),
}


def _lastfm_folder(folder, **changes):
    """The LASTFM files in `folder`; a change maps a file name (dots as _) to content or None."""
    for name, content in LASTFM.items():
        content = changes.get(name.replace(".", "_"), content)
        if content is not None:
            _write(os.path.join(folder, name), content)
    return str(folder)


def test_lastfm_output_files_are_exact(tmp_path):
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.LASTFM_HETREC, _lastfm_folder(tmp_path / "src"),
                                       out)
    assert _read(os.path.join(out, "interactions.csv")) == (
        "user_id,item_id,weight,plays\n"
        "2,1,1.0,300\n"
        "2,10,1.0,7\n"
        "10,2,1.0,5\n")
    # Ties (one assignment each) by name; "|" inside a name becomes a space.
    assert _read(os.path.join(out, "items.csv")) == (
        "item_id,artist,tags\n"
        '1,"""Weird Al"" Yankovic",\n'
        '2,"Earth, Wind & Fire",rock|funk soul|tropicália|zzz\n'
        "3,Never Played,\n"
        "10,buried cable,\n")
    assert _read(os.path.join(out, "friends.csv")) == "user_id,friend_id\n2,10\n10,2\n"
    assert sorted(os.listdir(out)) == ["friends.csv", "interactions.csv", "items.csv",
                                       "manifest.json"]
    dropped = {"tags_of_unknown_artists": 1, "tags_of_unknown_tags": 1,
               "tags_with_empty_names": 0, "friends_of_unknown_users": 1,
               "duplicate_friend_pairs": 0}
    assert summary == importers.ImportSummary(
        format="lastfm-hetrec", source_name="src", out_dir=out, users=2, items=4,
        interactions=3, has_timestamps=False, dropped=dropped)
    manifest = json.loads(_read(os.path.join(out, "manifest.json")))
    assert manifest["format"] == "lastfm-hetrec" and manifest["layout"] == sources.GENERIC
    # The base name only: an absolute path names the machine's folders (and often its user).
    assert manifest["source_name"] == "src" and "source_dir" not in manifest
    assert str(tmp_path) not in _read(os.path.join(out, "manifest.json"))
    assert (manifest["users"], manifest["items"], manifest["interactions"]) == (2, 4, 3)
    assert manifest["has_timestamps"] is False and manifest["dropped"] == dropped
    assert "non-commercial" in manifest["licence"] and "readme.txt" in manifest["licence"]
    assert manifest["encodings"]["tags.dat"] == "latin-1"
    assert manifest["encodings"]["artists.dat"] == "utf-8"


def test_lastfm_items_are_read_back_by_the_pipeline(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.LASTFM_HETREC, _lastfm_folder(tmp_path / "src"), out)
    catalogue = sources.read_catalogue(os.path.join(out, "items.csv"))
    assert list(catalogue.track_id) == ["1", "2", "3", "10"]
    assert list(catalogue.artist) == ['"Weird Al" Yankovic', "Earth, Wind & Fire",
                                      "Never Played", "buried cable"]
    pad = features.PAD_TOKEN
    assert list(catalogue.tags[1]) == ["rock", "funk soul", "tropicália", "zzz"] + [pad] * 4
    assert list(catalogue.tags[0]) == [pad] * features.MAX_TAGS


def test_lastfm_interactions_are_read_back_by_the_pipeline(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.LASTFM_HETREC, _lastfm_folder(tmp_path / "src"), out)
    assert sources.detect_layout(out) == sources.GENERIC
    assert not sources.has_timestamps(out, sources.GENERIC)
    known = sources.read_catalogue(os.path.join(out, "items.csv")).track_id
    plays = sources.read_generic_interactions(os.path.join(out, "interactions.csv"), known)
    assert list(plays.user_id) == ["2", "2", "10"]
    assert list(plays.track_id) == ["1", "10", "2"]
    np.testing.assert_allclose(plays.weight, [1.0, 1.0, 1.0])


def test_lastfm_keeps_the_most_applied_tags(tmp_path):
    # Tag t<k> is applied k times to artist 1 (k = 1..10); t0 and t00 once each tie with t1.
    tag_names = [f"t{k}" for k in range(1, 11)] + ["t0", "t00"]
    rows = [(2, 1, index + 1, 1, 1, 2010) for index, name in enumerate(tag_names)
            for _ in range(int(name[1:]) if name not in ("t0", "t00") else 1)]
    source = _lastfm_folder(
        tmp_path / "src",
        tags_dat=_tsv(("tagID", "tagValue"), *enumerate(tag_names, start=1)),
        user_taggedartists_dat=_tsv(("userID", "artistID", "tagID", "day", "month", "year"),
                                    *rows),
        user_friends_dat=None)
    importers.import_dataset(importers.LASTFM_HETREC, source, str(tmp_path / "out"))
    items = _read(str(tmp_path / "out" / "items.csv")).splitlines()
    assert items[1] == '1,"""Weird Al"" Yankovic",t10|t9|t8|t7|t6|t5|t4|t3'
    assert not os.path.exists(tmp_path / "out" / "friends.csv")


def test_lastfm_tags_are_optional_as_a_pair(tmp_path):
    summary = importers.import_dataset(
        importers.LASTFM_HETREC,
        _lastfm_folder(tmp_path / "src", tags_dat=None, user_taggedartists_dat=None),
        str(tmp_path / "out"))
    assert _read(str(tmp_path / "out" / "items.csv")).splitlines()[2] == (
        '2,"Earth, Wind & Fire",')
    assert summary.dropped["tags_of_unknown_artists"] == 0
    with pytest.raises(sources.InputDataError, match="used together") as error:
        importers.import_dataset(importers.LASTFM_HETREC,
                                 _lastfm_folder(tmp_path / "src2", tags_dat=None),
                                 str(tmp_path / "out2"))
    assert error.value.path == str(tmp_path / "src2" / "tags.dat")
    assert not os.path.exists(tmp_path / "out2")


_UA_HEADER = ("userID", "artistID", "weight")


@pytest.mark.parametrize("file, content, row, field, message", [
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (2, "x1", 5)), 2, "artistID",
     "not a non-negative integer: 'x1'"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (-2, 2, 5)), 2, "userID",
     "not a non-negative integer: '-2'"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (2, 2, 2.5)), 2, "weight",
     "not a non-negative integer: '2.5'"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (2, 2, 0)), 2, "weight",
     "must be positive: '0'"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (3, 1, 1), (2, 1, 9)), 3, "artistID",
     r"duplicate \(userID, artistID\) pair \(2, 1\); first at row 1"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (2, 4, 1)), 2, "artistID",
     "artist 4 is not in artists.dat"),
    ("user_artists.dat", _tsv(("userID", "artistID"), (2, 1)), None, "weight",
     "missing column"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3), (2, 2)), 2, "weight",
     "expected 3 tab-separated fields, found 2"),
    ("user_artists.dat", _tsv(_UA_HEADER, (2, 1, 3, 4)), 1, None,
     "expected 3 tab-separated fields, found 4"),
    ("user_artists.dat", _tsv(_UA_HEADER), None, None, "no rows"),
    ("user_artists.dat", "", None, None, "empty"),
    ("artists.dat", _tsv(("id", "name"), (1, "A"), (2, "B"), (1, "C")), 3, "id",
     r"duplicate artist id 1 \(first at row 1\)"),
    ("artists.dat", _tsv(("id", "name"), (1, "A"), (2, " | ")), 2, "name", "empty artist name"),
    ("tags.dat", _tsv(("tagID", "tagValue"), (1, "rock"), ("two", "pop")), 2, "tagID",
     "not a non-negative integer"),
    ("user_taggedartists.dat", _tsv(("userID", "artistID", "tagID"), (2, 1, 1), (2, "", 1)),
     2, "artistID", "not a non-negative integer"),
    ("user_friends.dat", _tsv(("userID", "friendID"), (2, 10), (2, "1e3")), 2, "friendID",
     "not a non-negative integer"),
])
def test_malformed_lastfm_files_name_file_row_and_field(tmp_path, file, content, row, field,
                                                       message):
    source = _lastfm_folder(tmp_path / "src", **{file.replace(".", "_"): content})
    with pytest.raises(sources.InputDataError, match=message) as error:
        importers.import_dataset(importers.LASTFM_HETREC, source, str(tmp_path / "out"))
    assert (error.value.path, error.value.row, error.value.field) == (
        os.path.join(source, file), row, field)
    assert not os.path.exists(tmp_path / "out")
    assert os.listdir(tmp_path) == ["src"]  # the staging folder is gone too


def test_lastfm_required_files(tmp_path):
    source = _lastfm_folder(tmp_path / "src", artists_dat=None)
    with pytest.raises(sources.InputDataError, match="missing") as error:
        importers.import_dataset(importers.LASTFM_HETREC, source, str(tmp_path / "out"))
    assert error.value.path == os.path.join(source, "artists.dat") and error.value.row is None


def test_real_lastfm_import(tmp_path):
    if not os.path.isfile(os.path.join(REAL_LASTFM_DIR, "user_artists.dat")):
        pytest.skip(f"HetRec Last.fm 2k data not found at {REAL_LASTFM_DIR} "
                    "(set CROSSFADE_LASTFM_DIR)")
    out = str(tmp_path / "lastfm")
    start = time.perf_counter()
    summary = importers.import_dataset(importers.LASTFM_HETREC, REAL_LASTFM_DIR, out)
    seconds = time.perf_counter() - start
    assert (summary.users, summary.items, summary.interactions) == (1892, 17632, 92834)
    assert summary.dropped["tags_of_unknown_artists"] == 1538
    assert summary.dropped["friends_of_unknown_users"] == 0
    catalogue = sources.read_catalogue(os.path.join(out, "items.csv"))
    assert len(catalogue) == 17632
    assert "tropicália" in _read(os.path.join(out, "items.csv"))
    plays = sources.read_generic_interactions(os.path.join(out, "interactions.csv"),
                                              catalogue.track_id)
    assert len(plays) == 92834 and len(set(plays.user_id)) == 1892
    with open(os.path.join(out, "friends.csv")) as handle:
        assert sum(1 for _ in handle) == 25434 + 1
    assert seconds < 30, f"the real import took {seconds:.1f}s"


# --- spotify-history -----------------------------------------------------------------------

IP_ADDRESS = "203.0.113.77"
USER_AGENT = "Mozilla/5.0 (X11; SecretPhone 9.1) AppleWebKit/537.36"


def _play(ts="2023-01-05T18:22:11Z", uri="spotify:track:a", ms=180000, title="Song",
          artist="Artist", album="Album", username=None, **fields):
    """A record with every field of a real export, personal ones included."""
    record = {
        "ts": ts, "platform": "android", "ms_played": ms, "conn_country": "SE",
        "ip_addr_decrypted": IP_ADDRESS, "ip_addr": IP_ADDRESS,
        "user_agent_decrypted": USER_AGENT,
        "master_metadata_track_name": title, "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album, "spotify_track_uri": uri,
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None,
        "reason_start": "clickrow", "reason_end": "trackdone", "shuffle": False,
        "skipped": None, "offline": False, "offline_timestamp": 1672942931,
        "incognito_mode": False,
    }
    if username is not None:
        record["username"] = username
    record.update(fields)
    return record


_EPISODE = dict(uri=None, title=None, artist=None, album=None, episode_name="Ep 1",
                episode_show_name="Show", spotify_episode_uri="spotify:episode:e")
_AUDIOBOOK = dict(uri=None, title=None, artist=None, album=None,
                  audiobook_title="Book", audiobook_uri="spotify:audiobook:b")


def _spotify_folder(folder):
    # alice: newest export (no username field), one folder; bob: older export with a
    # username, in two files, one of them in a nested folder.
    _write(os.path.join(folder, "alice", "Streaming_History_Audio_2023.json"), json.dumps([
        _play(ts="2023-02-01T00:00:01Z", uri="spotify:track:b", title='Song, "quoted"',
              skipped=True, shuffle=True),
        _play(ts="2023-01-31T23:59:59Z"),
        _play(ts="2023-02-02T10:00:00Z", **_EPISODE),
        _play(ts="2023-02-02T11:00:00Z", **_AUDIOBOOK),
        # A private session: dropped, and its track is in no output file.
        _play(ts="2023-01-20T12:00:00Z", uri="spotify:track:private", title="Guilty pleasure",
              incognito_mode=True),
        # +01:00: 23:30 UTC on 31 January, so it belongs to the January span.
        _play(ts="2023-02-01T00:30:00+01:00", uri="spotify:track:c", title=None, artist=None,
              album=None, reason_end="fwdbtn", ms=0, offline=True),
    ]))
    _write(os.path.join(folder, "bob", "Streaming_History_Audio_2022-2023_0.json"), json.dumps([
        _play(ts="2023-01-10T08:00:00Z", uri="spotify:track:c", title="Late\ntitle",
              username="bob_spotify", platform="ios"),
    ]))
    _write(os.path.join(folder, "bob", "more", "Streaming_History_Audio_2023_1.json"),
           json.dumps([_play(ts="2022-12-31T23:00:00Z", username="", reason_start=None,
                             title="Old title", incognito_mode=None)]))
    # Not audio history: never read, so its content does not matter.
    _write(os.path.join(folder, "alice", "Streaming_History_Video_2023.json"), "not json")
    return str(folder)


def test_spotify_output_files_are_exact(tmp_path):
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY,
                                       _spotify_folder(tmp_path / "src"), out,
                                       keep_usernames=True)
    header = ",".join(layout.PLAY_COLUMNS) + "\n"
    assert _read(os.path.join(out, "plays", "span-202212", "plays.csv")) == header + (
        "2022-12-31T23:00:00Z,bob,android,180000,SE,Old title,Artist,Album,spotify:track:a,,"
        "trackdone,false,false,false\n")
    assert _read(os.path.join(out, "plays", "span-202301", "plays.csv")) == header + (
        "2023-01-31T23:30:00Z,alice,android,0,SE,,,,spotify:track:c,clickrow,fwdbtn,"
        "false,false,true\n"
        "2023-01-31T23:59:59Z,alice,android,180000,SE,Song,Artist,Album,spotify:track:a,"
        "clickrow,trackdone,false,false,false\n"
        "2023-01-10T08:00:00Z,bob_spotify,ios,180000,SE,Late title,Artist,Album,"
        "spotify:track:c,clickrow,trackdone,false,false,false\n")
    assert _read(os.path.join(out, "plays", "span-202302", "plays.csv")) == header + (
        '2023-02-01T00:00:01Z,alice,android,180000,SE,"Song, ""quoted""",Artist,Album,'
        "spotify:track:b,clickrow,trackdone,true,true,false\n")
    empty = "," * (len(layout.CATALOGUE_COLUMNS) - 4)
    assert _read(os.path.join(out, "catalogue.csv")) == (
        ",".join(layout.CATALOGUE_COLUMNS) + "\n"
        f"spotify:track:a,Song,Artist,Album{empty}\n"
        f'spotify:track:b,"Song, ""quoted""",Artist,Album{empty}\n'
        # a: bob's earlier play has another title. c: the latest play has no metadata, so the
        # fields come from the latest that has.
        f"spotify:track:c,Late title,Artist,Album{empty}\n")
    assert sorted(file_tree(out)) == sorted([
        "catalogue.csv", "manifest.json", os.path.join("plays", "span-202212", "plays.csv"),
        os.path.join("plays", "span-202301", "plays.csv"),
        os.path.join("plays", "span-202302", "plays.csv")])
    dropped = {"incognito_plays": 1, "podcast_episodes": 1, "audiobooks": 1,
               "plays_without_track_uri": 0, "duplicate_plays": 0}
    assert summary == importers.ImportSummary(
        format="spotify-history", source_name="src", out_dir=out, users=3,
        items=3, interactions=5, has_timestamps=True, dropped=dropped)
    manifest = json.loads(_read(os.path.join(out, "manifest.json")))
    assert manifest["layout"] == sources.SIMULATOR and manifest["dropped"] == dropped
    assert manifest["has_timestamps"] is True and "licence" not in manifest
    assert (manifest["incognito_plays"], manifest["usernames"]) == ("dropped", "verbatim")
    assert not os.path.exists(out + ".pseudonym-key")


def test_spotify_outputs_are_read_back_by_the_pipeline(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.SPOTIFY_HISTORY, _spotify_folder(tmp_path / "src"), out,
                             keep_usernames=True)
    assert sources.detect_layout(out) == sources.SIMULATOR
    catalogue = sources.read_catalogue(os.path.join(out, "catalogue.csv"))
    assert list(catalogue.track_id) == ["spotify:track:a", "spotify:track:b", "spotify:track:c"]
    plays = sources.Plays.concat([
        sources.read_spotify_plays(os.path.join(out, "plays", span, "plays.csv"),
                                   catalogue.track_id)
        for span in ("span-202212", "span-202301", "span-202302")])
    assert list(plays.user_id) == ["bob", "alice", "alice", "bob_spotify", "alice"]
    assert list(plays.ts) == [1672527600, 1675207800, 1675209599, 1673337600, 1675209601]
    assert list(plays.skipped) == [0, 0, 0, 0, 1]
    assert list(plays.ms_played) == [180000, 0, 180000, 180000, 180000]


def test_spotify_personal_fields_reach_no_output_file(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.SPOTIFY_HISTORY, _spotify_folder(tmp_path / "src"), out)
    files = file_tree(out)
    assert len(files) == 5  # the pseudonym key is not among them
    # User names (pseudonymised by default), incognito plays and the source's path neither.
    for name, content in files.items():
        for secret in (IP_ADDRESS, USER_AGENT, "SecretPhone", "1672942931", "incognito_mode",
                       "alice", "bob", "Guilty pleasure", "spotify:track:private",
                       str(tmp_path)):
            assert secret.encode() not in content, (name, secret)


def _users(out):
    """The user column of every plays file under `out`, in file order."""
    rows = []
    for span in sorted(os.listdir(os.path.join(out, "plays"))):
        lines = _read(os.path.join(out, "plays", span, "plays.csv")).splitlines()[1:]
        rows.extend(line.split(",")[1] for line in lines)
    return rows


def test_spotify_usernames_are_pseudonymised_with_a_private_key_beside_the_data(tmp_path):
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY,
                                       _spotify_folder(tmp_path / "src"), out)
    key_path = str(tmp_path / "out.pseudonym-key")
    assert summary.pseudonym_key == key_path
    assert os.stat(key_path).st_mode & 0o777 == 0o600
    assert len(_read(key_path).strip()) == 64
    key = pseudonyms.read_key(key_path)
    alice, bob, bob_spotify = (pseudonyms.pseudonym(key, name)
                               for name in ("alice", "bob", "bob_spotify"))
    assert sorted(set(_users(out))) == sorted({alice, bob, bob_spotify})
    assert summary.users == 3 and summary.interactions == 5
    manifest = json.loads(_read(os.path.join(out, "manifest.json")))
    assert manifest["usernames"] == "pseudonymised" and manifest["source_name"] is None
    assert manifest["pseudonym_key_id"] == pseudonyms.key_id(key)
    assert key.hex() not in json.dumps(manifest)
    assert sorted(os.listdir(tmp_path)) == ["out", "out.pseudonym-key", "src"]


def test_spotify_pseudonyms_are_stable_across_imports(tmp_path):
    out = str(tmp_path / "out")
    source = _spotify_folder(tmp_path / "src")
    importers.import_dataset(importers.SPOTIFY_HISTORY, source, out)
    key, first = _read(out + ".pseudonym-key"), file_tree(out)
    importers.import_dataset(importers.SPOTIFY_HISTORY, source, out)
    assert _read(out + ".pseudonym-key") == key and file_tree(out) == first
    # A chosen key file: created when missing, then reused.
    chosen = str(tmp_path / "keys" / "spotify.key")
    os.makedirs(tmp_path / "keys")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY, source, str(tmp_path / "b"),
                                       pseudonym_key=chosen)
    assert summary.pseudonym_key == chosen and not os.path.exists(tmp_path / "b.pseudonym-key")
    assert set(_users(str(tmp_path / "b"))) != set(_users(out))  # another key
    again = importers.import_dataset(importers.SPOTIFY_HISTORY, source, str(tmp_path / "c"),
                                     pseudonym_key=out + ".pseudonym-key")
    assert again.pseudonym_key == out + ".pseudonym-key"
    assert _users(str(tmp_path / "c")) == _users(out)


@pytest.mark.parametrize("key_file, content, message", [
    ("out/the.key", None, "must not be inside the output folder"),
    ("missing/the.key", None, "folder does not exist"),
    ("bad.key", "not hex\n", "not a pseudonym key"),
    ("short.key", "ab" * 16 + "\n", "not a pseudonym key"),
])
def test_unusable_pseudonym_keys_are_refused_and_nothing_is_written(tmp_path, key_file,
                                                                     content, message):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.SPOTIFY_HISTORY, _spotify_folder(tmp_path / "src"), out,
                             keep_usernames=True)
    before = file_tree(out)
    key_path = str(tmp_path / key_file)
    if content is not None:
        _write(key_path, content)
    with pytest.raises(sources.InputDataError, match=message) as error:
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "src"), out,
                                 pseudonym_key=key_path)
    assert error.value.path == key_path
    assert file_tree(out) == before
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["out", "src"] + ([key_file] if content is not None else []))


def test_pseudonym_collisions_fail_rather_than_merge_users(tmp_path, monkeypatch):
    monkeypatch.setattr(pseudonyms, "pseudonym", lambda key, name: "u_0000000000000000")
    with pytest.raises(sources.InputDataError, match="same pseudonym"):
        importers.import_dataset(importers.SPOTIFY_HISTORY, _spotify_folder(tmp_path / "src"),
                                 str(tmp_path / "out"))
    assert os.listdir(tmp_path) == ["src"]  # no key file either


def test_spotify_incognito_plays_are_dropped_unless_kept(tmp_path):
    _write(tmp_path / "dana" / "Streaming_History_Audio_2023.json", json.dumps([
        _play(), _play(ts="2023-01-06T10:00:00Z", uri="spotify:track:x", incognito_mode=True),
        _play(ts="2023-01-07T10:00:00Z", incognito_mode=None),
        _play(ts="2023-01-08T10:00:00Z", incognito_mode=True, **_EPISODE)]))
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "dana"), out)
    assert summary.dropped["incognito_plays"] == 2 and summary.dropped["podcast_episodes"] == 0
    assert (summary.interactions, summary.items) == (2, 1)
    manifest = json.loads(_read(os.path.join(out, "manifest.json")))
    assert manifest["dropped"]["incognito_plays"] == 2
    assert manifest["incognito_plays"] == "dropped"
    assert b"spotify:track:x" not in b"".join(file_tree(out).values())
    kept = importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "dana"), out,
                                    keep_incognito=True)
    assert kept.dropped["incognito_plays"] == 0 and kept.dropped["podcast_episodes"] == 1
    assert (kept.interactions, kept.items) == (3, 2)
    assert json.loads(_read(os.path.join(out, "manifest.json")))["incognito_plays"] == "kept"


def test_only_incognito_plays_is_no_music(tmp_path):
    _write(tmp_path / "e" / "Streaming_History_Audio_2023.json",
           json.dumps([_play(incognito_mode=True)]))
    with pytest.raises(sources.InputDataError, match="or is an incognito play"):
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "e"),
                                 str(tmp_path / "out"))
    assert os.listdir(tmp_path) == ["e"]


@pytest.mark.parametrize("fmt, options", [
    (importers.LASTFM_HETREC, {"keep_incognito": True}),
    (importers.CSV, {"keep_usernames": True}),
    (importers.CSV, {"pseudonym_key": "k"}),
    (importers.SPOTIFY_HISTORY, {"keep_usernames": True, "pseudonym_key": "k"}),
])
def test_spotify_options_are_for_spotify_only(tmp_path, fmt, options):
    source = _csv_folder(tmp_path / "src")
    with pytest.raises(ValueError, match="spotify-history only|exclude each other"):
        importers.import_dataset(fmt, source, str(tmp_path / "out"), **options)
    assert os.listdir(tmp_path) == ["src"]


def test_spotify_single_user_folder_and_duplicate_files(tmp_path):
    # Files directly in the source folder belong to a user named after that folder; the same
    # export copied twice must not double the plays.
    records = json.dumps([_play(), _play(ts="2023-01-06T10:00:00Z", uri=None)])
    _write(tmp_path / "carol" / "Streaming_History_Audio_2023.json", records)
    _write(tmp_path / "carol" / "Streaming_History_Audio_2023 (1).json", records)
    # Hidden folders (a trash folder, a half-finished import) are not searched.
    _write(tmp_path / "carol" / ".Trash" / "Streaming_History_Audio_2023.json", "not json")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "carol"),
                                       str(tmp_path / "out"))
    assert (summary.users, summary.interactions) == (1, 1)
    assert summary.dropped == {"incognito_plays": 0, "podcast_episodes": 0, "audiobooks": 0,
                               "plays_without_track_uri": 2, "duplicate_plays": 1}
    rows = _read(str(tmp_path / "out" / "plays" / "span-202301" / "plays.csv")).splitlines()
    key = pseudonyms.read_key(str(tmp_path / "out.pseudonym-key"))
    assert [row.split(",")[1] for row in rows[1:]] == [pseudonyms.pseudonym(key, "carol")]
    # The folder's name is its user's name: the manifest must not record it either.
    manifest = json.loads(_read(str(tmp_path / "out" / "manifest.json")))
    assert manifest["source_name"] is None and summary.source_name is None
    assert b"carol" not in b"".join(file_tree(str(tmp_path / "out")).values())


@pytest.mark.parametrize("content, row, field, message", [
    ("[{", None, None, "not JSON"),
    (b"[\xff]", None, None, "not JSON"),
    (json.dumps({"ts": "2023-01-05T18:22:11Z"}), None, None,
     "not a JSON array of play records .the top level is a dict"),
    (json.dumps([_play(), 5]), 2, None, "record is not a JSON object: 5"),
    (json.dumps([_play(), _play(ts="yesterday")]), 2, "ts",
     "not an ISO-8601 timestamp: 'yesterday'"),
    (json.dumps([_play(), _play(ts="2023-02-30T10:00:00Z")]), 2, "ts", "not an ISO-8601"),
    (json.dumps([_play(), _play(ts=1672942931)]), 2, "ts", "not a string: 1672942931"),
    (json.dumps([_play(), {k: v for k, v in _play().items() if k != "ts"}]), 2, "ts",
     "field is missing"),
    (json.dumps([_play(), _play(), _play(ms=-5)]), 3, "ms_played",
     "not a non-negative integer: -5"),
    (json.dumps([_play(ms="100")]), 1, "ms_played", "not a non-negative integer: '100'"),
    (json.dumps([_play(ms=1.5)]), 1, "ms_played", "not a non-negative integer: 1.5"),
    (json.dumps([_play(ms=True)]), 1, "ms_played", "not a non-negative integer: True"),
    (json.dumps([_play(), _play(uri=123)]), 2, "spotify_track_uri",
     "not a non-empty string or null: 123"),
    (json.dumps([{k: v for k, v in _play().items() if k != "spotify_track_uri"}]), 1,
     "spotify_track_uri", "field is missing"),
    (json.dumps([_play(), _play(skipped="yes")]), 2, "skipped", "not a boolean: 'yes'"),
    (json.dumps([_play(username=7)]), 1, "username", "not a string: 7"),
    (json.dumps([_play(title=["a"])]), 1, "master_metadata_track_name", "not a string"),
    (json.dumps([_play(), _play(incognito_mode="yes")]), 2, "incognito_mode",
     "not a boolean: 'yes'"),
])
def test_malformed_spotify_files_name_file_record_and_field(tmp_path, content, row, field,
                                                            message):
    _write(tmp_path / "src" / "a" / "Streaming_History_Audio_2023_0.json", json.dumps([_play()]))
    path = _write(tmp_path / "src" / "b" / "Streaming_History_Audio_2023_1.json", content)
    with pytest.raises(sources.InputDataError, match=message) as error:
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "src"),
                                 str(tmp_path / "out"))
    assert (error.value.path, error.value.row, error.value.field) == (path, row, field)
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_spotify_without_music_or_files(tmp_path):
    _write(tmp_path / "pods" / "Streaming_History_Audio_2023.json",
           json.dumps([_play(**_EPISODE)]))
    with pytest.raises(sources.InputDataError, match="no music plays") as error:
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "pods"),
                                 str(tmp_path / "out"))
    assert error.value.path == str(tmp_path / "pods")
    os.makedirs(tmp_path / "nothing")
    with pytest.raises(sources.InputDataError, match="no Streaming_History_Audio_"):
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "nothing"),
                                 str(tmp_path / "out"))


# --- csv -----------------------------------------------------------------------------------

def test_csv_is_validated_and_copied(tmp_path):
    interactions = "user_id,item_id,timestamp,weight\nu1,i1,100,2\nu2,i2,200,\nu1,i2,300,1\n"
    items = 'item_id,artist,tags\ni1,"A, B",x|y\ni2,C,\ni3,D,\n'
    _write(tmp_path / "src" / "interactions.csv", interactions)
    _write(tmp_path / "src" / "items.csv", items)
    _write(tmp_path / "src" / "notes.txt", "not part of the layout")
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.CSV, str(tmp_path / "src"), out)
    assert (summary.users, summary.items, summary.interactions) == (2, 3, 3)
    assert summary.has_timestamps and summary.dropped == {}
    assert _read(os.path.join(out, "interactions.csv")) == interactions
    assert _read(os.path.join(out, "items.csv")) == items
    assert sorted(os.listdir(out)) == ["interactions.csv", "items.csv", "manifest.json"]
    assert json.loads(_read(os.path.join(out, "manifest.json")))["format"] == "csv"


def test_csv_without_items_or_timestamps(tmp_path):
    _write(tmp_path / "src" / "interactions.csv", "user_id,item_id,weight\nu,a,1\nu,b,2\n")
    summary = importers.import_dataset(importers.CSV, str(tmp_path / "src"),
                                       str(tmp_path / "out"))
    assert (summary.users, summary.items, summary.interactions) == (1, 2, 2)
    assert not summary.has_timestamps
    assert sorted(os.listdir(tmp_path / "out")) == ["interactions.csv", "manifest.json"]


@pytest.mark.parametrize("interactions, items, file, row, field, message", [
    ("user_id,item_id,timestamp\nu,i1,1\nu,i9,2\n", "item_id\ni1\n", "interactions.csv", 2,
     "item_id", "not in the catalogue"),
    ("user_id,item_id,timestamp\nu,i1,1\nu,i1,soon\n", None, "interactions.csv", 2,
     "timestamp", "not a number"),
    ("user_id,item_id,timestamp\nu,i1,1\n", "item_id\ni1\ni1\n", "items.csv", 2, "item_id",
     "duplicate"),
    (None, "item_id\ni1\n", "interactions.csv", None, None, "missing"),
])
def test_csv_errors(tmp_path, interactions, items, file, row, field, message):
    for name, content in (("interactions.csv", interactions), ("items.csv", items)):
        if content is not None:
            _write(tmp_path / "src" / name, content)
    with pytest.raises(sources.InputDataError, match=message) as error:
        importers.import_dataset(importers.CSV, str(tmp_path / "src"), str(tmp_path / "out"))
    assert (error.value.path, error.value.row, error.value.field) == (
        str(tmp_path / "src" / file), row, field)
    assert not os.path.exists(tmp_path / "out")


# --- import_dataset ------------------------------------------------------------------------

def test_failed_reimport_leaves_the_previous_import_intact(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.LASTFM_HETREC, _lastfm_folder(tmp_path / "good"), out)
    before = file_tree(out)
    bad = _lastfm_folder(tmp_path / "bad", user_artists_dat=_tsv(_UA_HEADER, (2, 1, 3),
                                                                 (2, 1, 4)))
    with pytest.raises(sources.InputDataError, match="duplicate"):
        importers.import_dataset(importers.LASTFM_HETREC, bad, out)
    assert file_tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["bad", "good", "out"]  # no staging folder left


def test_successful_reimport_replaces_the_whole_folder(tmp_path):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.LASTFM_HETREC, _lastfm_folder(tmp_path / "a"), out)
    assert os.path.exists(os.path.join(out, "friends.csv"))
    _write(tmp_path / "b" / "interactions.csv", "user_id,item_id,timestamp\nu,i,1\n")
    summary = importers.import_dataset(importers.CSV, str(tmp_path / "b"), out)
    assert summary.interactions == 1
    assert sorted(os.listdir(out)) == ["interactions.csv", "manifest.json"]
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "out"]


def test_a_failing_write_leaves_no_output(tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.CSV, _csv_folder(tmp_path / "a"), out)
    before = file_tree(out)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(importers.json, "dump", fail)  # fails after the data files are written
    with pytest.raises(OSError, match="disk full"):
        importers.import_dataset(importers.CSV, _csv_folder(tmp_path / "b", "v"), out)
    assert file_tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "out"]


def test_a_failing_final_rename_restores_the_previous_import(tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.CSV, _csv_folder(tmp_path / "a"), out)
    before = file_tree(out)
    rename = os.rename

    def fail_to_install(source, target):
        if ".importing-" in source and not source.endswith(".previous"):
            raise OSError("rename failed")
        rename(source, target)

    monkeypatch.setattr(importers.os, "rename", fail_to_install)
    with pytest.raises(OSError, match="rename failed"):
        importers.import_dataset(importers.CSV, _csv_folder(tmp_path / "b", "v"), out)
    assert file_tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "out"]


@pytest.mark.parametrize("stage", ["manifest", "install"])
def test_a_failed_spotify_import_leaves_no_key_file(tmp_path, monkeypatch, stage):
    out = str(tmp_path / "out")
    importers.import_dataset(importers.CSV, _csv_folder(tmp_path / "a"), out)
    before = file_tree(out)
    rename = os.rename

    def fail(*args, **kwargs):
        raise OSError("disk full")

    def fail_to_install(source, target):
        if ".importing-" in source and not source.endswith(".previous"):
            raise OSError("disk full")
        rename(source, target)

    if stage == "manifest":  # fails before the key is written
        monkeypatch.setattr(importers.json, "dump", fail)
    else:  # fails after it: the new key must be removed again
        monkeypatch.setattr(importers.os, "rename", fail_to_install)
    with pytest.raises(OSError, match="disk full"):
        importers.import_dataset(importers.SPOTIFY_HISTORY, _spotify_folder(tmp_path / "s"), out)
    assert file_tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["a", "out", "s"]


def test_a_failed_reimport_keeps_the_existing_key(tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    source = _spotify_folder(tmp_path / "s")
    importers.import_dataset(importers.SPOTIFY_HISTORY, source, out)
    key, before = _read(out + ".pseudonym-key"), file_tree(out)
    monkeypatch.setattr(importers.json, "dump", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        importers.import_dataset(importers.SPOTIFY_HISTORY, source, out)
    assert _read(out + ".pseudonym-key") == key and file_tree(out) == before


def _csv_folder(folder, user="u"):
    _write(os.path.join(folder, "interactions.csv"), f"user_id,item_id,timestamp\n{user},i,1\n")
    return str(folder)


def test_unknown_format_and_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="lastfm-hetrec.*spotify-history.*csv"):
        importers.import_dataset("movielens", str(tmp_path), str(tmp_path / "out"))
    assert importers.FORMATS == ("lastfm-hetrec", "spotify-history", "csv")
    with pytest.raises(sources.InputDataError, match="does not exist"):
        importers.import_dataset(importers.CSV, str(tmp_path / "missing"), str(tmp_path / "o"))
    source = _csv_folder(tmp_path / "data" / "src")
    with pytest.raises(sources.InputDataError, match="contains the source folder"):
        importers.import_dataset(importers.CSV, source, str(tmp_path / "data"))
    with pytest.raises(sources.InputDataError, match="contains the source folder"):
        importers.import_dataset(importers.CSV, source, source)
    assert os.listdir(source) == ["interactions.csv"]


# --- crossfade import ----------------------------------------------------------------------

def test_cli_import_prints_incognito_drops_and_the_key(tmp_path, capsys):
    from crossfade.pipeline import cli
    source, out = _spotify_folder(tmp_path / "src"), str(tmp_path / "out")
    assert cli.main(["import", "--format", "spotify-history", "--source", source,
                     "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "1 incognito plays" in printed and f"{out}.pseudonym-key" in printed
    assert cli.main(["import", "--format", "spotify-history", "--source", source, "--out", out,
                     "--keep-incognito", "--keep-usernames"]) == 0
    printed = capsys.readouterr().out
    assert "incognito" not in printed and "pseudonym" not in printed
    assert "alice" in _users(out)
    key = str(tmp_path / "my.key")
    assert cli.main(["import", "--format", "spotify-history", "--source", source, "--out", out,
                     "--pseudonym-key", key]) == 0
    assert pseudonyms.pseudonym_for(key, "alice") in _users(out)


def test_cli_import_rejects_spotify_flags_for_other_formats(tmp_path, capsys):
    from crossfade.pipeline import cli
    assert cli.main(["import", "--format", "csv", "--source", _csv_folder(tmp_path / "src"),
                     "--out", str(tmp_path / "out"), "--keep-incognito"]) == 2
    assert "spotify-history only" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        cli.main(["import", "--format", "spotify-history", "--source", "s", "--out", "o",
                  "--keep-usernames", "--pseudonym-key", "k"])


def _library(*tracks, **other):
    return json.dumps({"tracks": list(tracks), "albums": [{"artist": "A", "album": "B"}],
                       "bannedTracks": [], **other})


def _saved(uri, title="Saved song", artist="Saver", album="Album"):
    return {"artist": artist, "album": album, "track": title, "uri": uri}


def test_spotify_library_becomes_untimed_likes_and_saved_tracks_join_the_catalogue(tmp_path):
    source = _spotify_folder(tmp_path / "src")
    # alice saved a track she played and one she never played (plus a local file); bob's
    # folder has plays of two users, so its library is not placed.
    _write(os.path.join(source, "alice", "YourLibrary.json"), _library(
        _saved("spotify:track:a"), _saved("spotify:track:new", title="Never\nplayed"),
        _saved("spotify:local:Band:Album:Song:200"), _saved("spotify:track:a")))
    out = str(tmp_path / "out")
    summary = importers.import_dataset(importers.SPOTIFY_HISTORY, source, out,
                                       keep_usernames=True)
    assert _read(os.path.join(out, "likes.csv")) == (
        "user_id,track_id,ts\nalice,spotify:track:a,\nalice,spotify:track:new,\n")
    catalogue = sources.read_catalogue(os.path.join(out, "catalogue.csv"))
    assert catalogue.track_id.tolist()[-1] == "spotify:track:new"
    assert catalogue.title.tolist()[-1] == "Never played"
    assert catalogue.title.tolist()[0] == "Song"  # a played track keeps its plays' metadata
    assert summary.items == 4 and summary.interactions == 5
    manifest = json.loads(_read(os.path.join(out, "manifest.json")))
    assert (manifest["saved_tracks"], manifest["saved_entries_not_tracks"]) == (2, 1)
    likes = sources.read_likes(os.path.join(out, "likes.csv"), catalogue.track_id)
    assert likes.ts.tolist() == [sources.NO_TIME, sources.NO_TIME]


def test_spotify_library_users_are_pseudonymised_like_the_plays(tmp_path):
    _write(tmp_path / "carol" / "Streaming_History_Audio_2023.json", json.dumps([_play()]))
    _write(tmp_path / "carol" / "YourLibrary.json", _library(_saved("spotify:track:a")))
    out = tmp_path / "out"
    importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "carol"), str(out))
    key = pseudonyms.read_key(str(tmp_path / "out.pseudonym-key"))
    assert _read(str(out / "likes.csv")).splitlines()[1] == (
        f"{pseudonyms.pseudonym(key, 'carol')},spotify:track:a,")
    assert b"carol" not in b"".join(file_tree(str(out)).values())


def test_a_library_beside_plays_of_several_users_is_refused(tmp_path):
    source = _spotify_folder(tmp_path / "src")
    path = _write(os.path.join(source, "bob", "YourLibrary.json"),
                  _library(_saved("spotify:track:a")))
    with pytest.raises(sources.InputDataError, match="whose library is this") as error:
        importers.import_dataset(importers.SPOTIFY_HISTORY, source, str(tmp_path / "out"))
    assert error.value.path == path
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize("content, row, field, message", [
    ("{", None, None, "not JSON"),
    ("[]", None, None, "not a JSON object with a 'tracks' list"),
    (json.dumps({"tracks": {}}), None, "tracks", "not a list"),
    (_library(_saved("spotify:track:a"), 7), 2, "tracks", "entry is not a JSON object"),
    (_library(_saved("spotify:track:a"), _saved(None)), 2, "uri", "not a non-empty string"),
    (_library(_saved("spotify:track:a", title=5)), 1, "track", "not a string: 5"),
])
def test_malformed_libraries_name_file_entry_and_field(tmp_path, content, row, field, message):
    _write(tmp_path / "dan" / "Streaming_History_Audio_2023.json", json.dumps([_play()]))
    path = _write(tmp_path / "dan" / "YourLibrary.json", content)
    with pytest.raises(sources.InputDataError, match=message) as error:
        importers.import_dataset(importers.SPOTIFY_HISTORY, str(tmp_path / "dan"),
                                 str(tmp_path / "out"))
    assert (error.value.path, error.value.row, error.value.field) == (path, row, field)
