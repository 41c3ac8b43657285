"""Keyed user-name pseudonyms and their key files; `crossfade recommend --pseudonym-key`."""
import contextlib
import hashlib
import hmac
import os

import pytest

from crossfade.components.listening_data import pseudonyms

KEY = bytes(range(32))


def test_pseudonyms_are_keyed_hmacs():
    name = pseudonyms.pseudonym(KEY, "alice")
    # HMAC-SHA256(KEY, "alice"), its first 16 hex digits.
    assert name == "u_" + hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()[:16]
    assert len(name) == 18 and name == pseudonyms.pseudonym(KEY, "alice")
    assert pseudonyms.pseudonym(KEY, "bob") != name
    assert pseudonyms.pseudonym(bytes(32), "alice") != name
    assert pseudonyms.pseudonym(KEY, "zoë") != pseudonyms.pseudonym(KEY, "zoe")


def test_key_files_round_trip_privately(tmp_path):
    path = str(tmp_path / "k")
    key = pseudonyms.new_key()
    assert len(key) == 32 and key != pseudonyms.new_key()
    pseudonyms.write_key(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert pseudonyms.read_key(path) == key
    assert pseudonyms.pseudonym_for(path, "alice") == pseudonyms.pseudonym(key, "alice")
    with pytest.raises(FileExistsError):  # never overwrites a key
        pseudonyms.write_key(path, pseudonyms.new_key())
    assert pseudonyms.key_id(key) != pseudonyms.key_id(KEY) and key.hex()[:12] not in \
        pseudonyms.key_id(key)


@pytest.mark.parametrize("content", [None, "zz" * 32, "ab" * 31, ""])
def test_unusable_key_files_name_the_file(tmp_path, content):
    path = str(tmp_path / "k")
    if content is not None:
        with open(path, "w") as handle:
            handle.write(content)
    with pytest.raises(pseudonyms.PseudonymKeyError) as error:
        pseudonyms.read_key(path)
    assert error.value.path == path and str(error.value).startswith(f"{path}: ")


def test_default_key_path_is_a_sibling_of_the_output(tmp_path):
    assert pseudonyms.default_key_path(str(tmp_path / "data" / "me") + os.sep) == \
        str(tmp_path / "data" / "me.pseudonym-key")


class _FakeClient:
    users = []

    def recommend(self, user, recent, k, **controls):
        _FakeClient.users.append(user)
        raise ValueError("stop here")


def test_recommend_maps_a_name_to_its_pseudonym(tmp_path, monkeypatch, capsys):
    from crossfade.serving import client, commands
    monkeypatch.setattr(client, "connect", lambda *args, **kwargs:
                        contextlib.nullcontext(_FakeClient()))
    path = str(tmp_path / "k")
    pseudonyms.write_key(path, KEY)
    assert commands.main(["recommend", "--user", "alice", "--pseudonym-key", path]) == 2
    assert commands.main(["recommend", "--user", "u_plain"]) == 2
    assert _FakeClient.users == [pseudonyms.pseudonym(KEY, "alice"), "u_plain"]
    capsys.readouterr()
    assert commands.main(["recommend", "--user", "alice", "--pseudonym-key",
                          str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
