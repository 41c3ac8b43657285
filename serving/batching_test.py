"""Server-side batching: merging, splitting, keys and failure isolation."""
import threading

import numpy as np
import pytest

from crossfade.serving.batching import Batcher, BatchingOptions


class _GatedModel:
    """Doubles `x`; the first call blocks until released, so later requests queue up."""

    def __init__(self):
        self.calls = []
        self.release = threading.Event()
        self.first_started = threading.Event()

    def __call__(self, key, inputs):
        self.calls.append(len(inputs["x"]))
        if not self.first_started.is_set():
            self.first_started.set()
            assert self.release.wait(timeout=30)
        if np.any(inputs["x"] < 0):
            raise ValueError("negative input")
        return {"y": inputs["x"] * 2, "rows": np.arange(len(inputs["x"]))}


def _submit_all(batcher, key_of, values):
    results, errors, threads = {}, {}, []

    def one(value):
        try:
            results[value] = batcher.submit(key_of(value), {"x": np.array([value])}, 1)
        except Exception as error:  # noqa: BLE001 -- collected for the assertions
            errors[value] = error

    for value in values:
        threads.append(threading.Thread(target=one, args=(value,)))
        threads[-1].start()
    return threads, results, errors


def _run_blocked(model, batcher, key_of, queued):
    first, first_results, _ = _submit_all(batcher, key_of, [1000])
    assert model.first_started.wait(timeout=30)
    threads, results, errors = _submit_all(batcher, key_of, queued)
    # Wait until every queued request sits in the batcher before releasing the model.
    for _ in range(3000):
        with batcher._cond:
            if sum(len(q) for q in batcher._queues.values()) == len(queued):
                break
        threading.Event().wait(0.01)
    model.release.set()
    for thread in first + threads:
        thread.join(timeout=30)
    results.update(first_results)
    return results, errors


def test_queued_requests_run_as_one_call_and_get_their_own_rows():
    model = _GatedModel()
    batcher = Batcher(model, BatchingOptions(max_batch_size=64, max_concurrent_batches=1))
    results, errors = _run_blocked(model, batcher, lambda v: "same", list(range(1, 9)))
    assert not errors
    assert model.calls == [1, 8]
    for value in range(1, 9):
        assert results[value]["y"].tolist() == [value * 2]
        assert results[value]["rows"].shape == (1,)
    assert (batcher.calls, batcher.requests) == (2, 9)


def test_batches_respect_keys_and_max_batch_size():
    model = _GatedModel()
    batcher = Batcher(model, BatchingOptions(max_batch_size=3, max_concurrent_batches=1))
    results, errors = _run_blocked(model, batcher, lambda v: v % 2, list(range(1, 9)))
    assert not errors and len(results) == 9
    assert sorted(model.calls[1:]) == [1, 1, 3, 3]  # odd: 4 -> 3 + 1, even: 4 -> 3 + 1


def test_a_failing_request_does_not_fail_its_batch():
    model = _GatedModel()
    batcher = Batcher(model, BatchingOptions(max_batch_size=64, max_concurrent_batches=1))
    results, errors = _run_blocked(model, batcher, lambda v: "same", [1, -2, 3])
    assert set(errors) == {-2} and isinstance(errors[-2], ValueError)
    assert results[1]["y"].tolist() == [2] and results[3]["y"].tolist() == [6]


def test_large_requests_bypass_the_queue():
    seen = []
    batcher = Batcher(lambda key, inputs: seen.append(len(inputs["x"])) or inputs,
                      BatchingOptions(max_batch_size=4))
    batcher.submit("k", {"x": np.zeros(10)}, 10)
    assert seen == [10]


def test_options_are_checked():
    with pytest.raises(ValueError):
        BatchingOptions(max_batch_size=0)
