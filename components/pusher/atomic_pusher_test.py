"""Atomic publication of model versions into a TF Serving base path."""
import os

import pytest

from crossfade.components.pusher import atomic_pusher


def _saved_model(path):
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "w") as handle:
        handle.write("model")
    with open(os.path.join(path, "variables", "variables.index"), "w") as handle:
        handle.write("index")
    return str(path)


def test_publish_creates_a_complete_numeric_version(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = str(tmp_path / "serving" / "crossfade")
    version = atomic_pusher.publish(model, base)
    assert version.isdigit()
    assert sorted(os.listdir(base)) == [version]  # no staging folder left behind
    assert os.path.exists(os.path.join(base, version, "variables", "variables.index"))


def test_versions_increase_and_old_ones_are_kept(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = str(tmp_path / "serving")
    os.makedirs(os.path.join(base, "99999999999"))  # a version from the future
    version = atomic_pusher.publish(model, base)
    assert int(version) == 100000000000
    assert os.path.isdir(os.path.join(base, "99999999999"))


def test_a_failed_copy_leaves_no_visible_version(tmp_path, monkeypatch):
    model = _saved_model(tmp_path / "model")
    base = str(tmp_path / "serving")

    def broken_copy(source, destination):
        os.makedirs(destination)
        raise OSError("disk full")

    monkeypatch.setattr(atomic_pusher.io_utils, "copy_dir", broken_copy)
    with pytest.raises(OSError):
        atomic_pusher.publish(model, base)
    assert [name for name in os.listdir(base) if name.isdigit()] == []


def test_the_next_push_removes_staging_folders_of_killed_pushes(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving"
    killed = _saved_model(base / (atomic_pusher.STAGING_PREFIX + "1700000000"))
    old = os.path.getmtime(killed) - atomic_pusher.STALE_STAGING_SECONDS - 60
    for parent, _, files in os.walk(killed):
        for name in files + [""]:
            os.utime(os.path.join(parent, name), (old, old))
    live = _saved_model(base / (atomic_pusher.STAGING_PREFIX + "1800000000"))  # still copying
    version = atomic_pusher.publish(model, str(base))
    assert sorted(os.listdir(base)) == sorted([version, os.path.basename(live)])
