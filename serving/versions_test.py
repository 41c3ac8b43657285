"""Version polling, policies, labels and states, on small stand-in models."""
import gc
import os
import shutil
import weakref

import grpc
import pytest

from crossfade.serving import signatures
from crossfade.serving.batching import BatchingOptions
from crossfade.serving.errors import ServingError
from crossfade.serving.model_config import ModelConfig, VersionPolicy
from crossfade.serving.servable import Servable
from crossfade.serving.versions import (
    AVAILABLE,
    END,
    LOADING,
    ModelRegistry,
    VersionManager,
    versions_on_disk,
)

LATEST = VersionPolicy()


def _manager(base: str, policy: VersionPolicy = LATEST, labels=None,
             loads=None, **retries) -> VersionManager:
    def load(config, version, path):
        if loads is not None:
            loads.append(version)
        return Servable.load(config.name, version, path)
    return VersionManager(ModelConfig("toy", base, policy, labels or {}), load, **retries)


class _Clock:
    """A settable stand-in for time.monotonic."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _states(manager):
    return [(s.version, s.state) for s in manager.states()]


def test_only_all_digit_folders_are_versions(toy_versions, tmp_path):
    base = toy_versions(3, 12)
    os.makedirs(os.path.join(base, ".staging-13"))
    os.makedirs(os.path.join(base, "tmp"))
    open(os.path.join(base, "99"), "w").close()  # a file, not a version folder
    os.rename(os.path.join(base, "12"), os.path.join(base, "0012"))
    assert versions_on_disk(base) == {3: "3", 12: "0012"}
    manager = _manager(base)
    manager.poll()
    assert manager.servable().path == os.path.join(base, "0012")
    assert versions_on_disk(str(tmp_path / "missing")) is None


def test_latest_policy_loads_the_newest_and_unloads_the_old_after(toy_versions):
    base = toy_versions(1)
    loads = []
    manager = _manager(base, loads=loads)
    manager.poll()
    old = manager.servable()
    assert old.version == 1 and manager.loaded_versions == [1]
    toy_versions(2, base=base)
    manager.poll()
    assert manager.loaded_versions == [2] and manager.servable().version == 2
    assert _states(manager) == [(2, AVAILABLE), (1, END)]
    # A request holding the old servable still completes after the unload.
    assert old.run("", signatures.recommend_inputs(["u"], k=3))["track_ids"].shape == (1, 3)
    manager.poll()
    assert loads == [1, 2]  # nothing reloaded by a poll without changes


@pytest.mark.parametrize("policy,loaded", [
    (VersionPolicy("latest", num_versions=2), [2, 3]),
    (VersionPolicy("all"), [1, 2, 3]),
    (VersionPolicy("specific", versions=(1, 3, 7)), [1, 3]),
])
def test_version_policies(toy_versions, policy, loaded):
    manager = _manager(toy_versions(1, 2, 3), policy)
    manager.poll()
    assert manager.loaded_versions == loaded
    assert manager.servable().version == max(loaded)
    assert manager.servable(version=loaded[0]).version == loaded[0]


def test_labels_and_lookup_errors(toy_versions):
    manager = _manager(toy_versions(1, 2), VersionPolicy("all"),
                       labels={"stable": 1, "canary": 2, "gone": 9})
    manager.poll()
    assert manager.servable(label="stable").version == 1
    assert manager.servable(label="canary").version == 2
    cases = [({"label": "nope"}, grpc.StatusCode.INVALID_ARGUMENT,
              "Unrecognized servable version label: nope"),
             ({"label": "gone"}, grpc.StatusCode.NOT_FOUND,
              "Servable not found for request: Specific(toy, 9)"),
             ({"version": 5}, grpc.StatusCode.NOT_FOUND,
              "Servable not found for request: Specific(toy, 5)")]
    for request, code, message in cases:
        with pytest.raises(ServingError) as error:
            manager.servable(**request)
        assert (error.value.code, error.value.message) == (code, message)
    with pytest.raises(ServingError, match="Could not find version 5 of model toy"):
        manager.states(version=5)


def test_a_broken_version_ends_with_its_error_and_the_old_one_keeps_serving(toy_versions):
    base = toy_versions(1)
    os.makedirs(os.path.join(base, "2"))  # no saved_model.pb
    loads = []
    manager = _manager(base, loads=loads, max_num_load_retries=0)
    manager.poll()
    assert manager.loaded_versions == [1]
    state = manager.states(version=2)[0]
    assert state.state == END and state.error_code != grpc.StatusCode.OK
    assert "version: 2" in state.error_message
    manager.poll()
    assert loads.count(2) == 1  # retries exhausted (none): not loaded again while it stays
    os.makedirs(os.path.join(base, "3"))  # a broken push while serving
    manager.poll()
    assert manager.loaded_versions == [1] and manager.states()[0].state == END


def test_no_versions_keeps_what_is_loaded(toy_versions, tmp_path):
    base = toy_versions(4)
    manager = _manager(base)
    manager.poll()
    for name in os.listdir(base):
        os.rename(os.path.join(base, name), os.path.join(base, ".old-" + name))
    manager.poll()
    assert manager.loaded_versions == [4]
    empty = _manager(str(tmp_path / "nothing"))
    empty.poll()
    with pytest.raises(ServingError) as error:
        empty.servable()
    assert error.value.code == grpc.StatusCode.NOT_FOUND
    assert error.value.message == "Servable not found for request: Latest(toy)"
    with pytest.raises(ServingError, match="Could not find any versions of model toy"):
        empty.states()


def test_registry_unknown_model(toy_versions):
    registry = ModelRegistry([_manager(toy_versions(1))])
    registry.poll()
    assert registry.ready() == (True, [])
    with pytest.raises(ServingError) as error:
        registry.servable("other", version=3)
    assert error.value.code == grpc.StatusCode.NOT_FOUND
    assert error.value.message == "Servable not found for request: Specific(other, 3)"
    with pytest.raises(ServingError, match="Could not find any versions of model other"):
        registry.states("other")


def test_a_servable_is_freed_by_its_last_reference_alone(toy_versions):
    """No reference cycle (e.g. through its batcher): an unloaded version's memory goes as
    soon as its last in-flight request ends, not at some later garbage collection."""
    base = toy_versions(1)
    servable = Servable.load("toy", 1, os.path.join(base, "1"), batching=BatchingOptions())
    servable.run("", signatures.recommend_inputs(["u"], k=3))
    alive = weakref.ref(servable)
    gc.disable()
    try:
        del servable
        assert alive() is None
    finally:
        gc.enable()


def test_a_failed_load_is_retried_until_the_copy_is_complete(toy_versions):
    """A copy that wrote saved_model.pb before variables/: TF Serving's load retries."""
    base = toy_versions(1)
    partial = os.path.join(base, "2")
    os.makedirs(os.path.join(partial, "variables"))
    shutil.copy(os.path.join(base, "1", "saved_model.pb"), partial)
    loads, clock = [], _Clock()
    manager = _manager(base, loads=loads, max_num_load_retries=5,
                       load_retry_interval_micros=2_000_000, clock=clock)
    manager.poll()
    assert manager.loaded_versions == [1] and loads == [2, 1]
    assert manager.states(version=2)[0].state == LOADING  # as TF Serving shows it, retrying
    clock.now = 1.9
    manager.poll()
    assert loads == [2, 1]  # not before the retry interval
    for name in os.listdir(os.path.join(base, "1", "variables")):
        shutil.copy(os.path.join(base, "1", "variables", name),
                    os.path.join(partial, "variables"))
    clock.now = 2.0
    manager.poll()
    assert loads == [2, 1, 2] and manager.loaded_versions == [2]
    assert _states(manager) == [(2, AVAILABLE), (1, END)]


def test_retries_are_bounded_then_the_version_stays_failed_until_it_is_repushed(toy_versions):
    base = toy_versions(1)
    os.makedirs(os.path.join(base, "3"))  # never loads
    loads, clock = [], _Clock()
    manager = _manager(base, loads=loads, max_num_load_retries=2,
                       load_retry_interval_micros=1_000_000, clock=clock)
    for _ in range(6):
        manager.poll()
        clock.now += 1
    assert loads.count(3) == 3  # the first attempt and 2 retries
    state = manager.states(version=3)[0]
    assert state.state == END and state.error_code != grpc.StatusCode.OK
    assert "version: 3" in state.error_message and manager.loaded_versions == [1]
    shutil.rmtree(os.path.join(base, "3"))
    manager.poll()  # gone from disk: its failure is forgotten
    toy_versions(3, base=base)
    manager.poll()
    assert loads.count(3) == 4 and manager.loaded_versions == [3]


def test_no_retries_and_a_zero_interval(toy_versions):
    base = toy_versions(1)
    os.makedirs(os.path.join(base, "2"))
    loads = []
    _manager(base, loads=loads, max_num_load_retries=0).poll()
    assert loads == [2, 1]
    loads.clear()
    # A zero interval retries at once, within the same poll, as TF Serving's loop does.
    _manager(base, loads=loads, max_num_load_retries=3, load_retry_interval_micros=0).poll()
    assert loads == [2, 2, 2, 2, 1]


def test_a_retry_is_dropped_once_a_newer_version_serves(toy_versions):
    base = toy_versions(1)
    os.makedirs(os.path.join(base, "2"))
    clock = _Clock()
    manager = _manager(base, max_num_load_retries=5, load_retry_interval_micros=10_000_000,
                       clock=clock)
    manager.poll()
    assert manager.states(version=2)[0].state == LOADING
    toy_versions(3, base=base)
    manager.poll()
    assert manager.loaded_versions == [3]
    state = manager.states(version=2)[0]
    assert state.state == END and "version: 2" in state.error_message
