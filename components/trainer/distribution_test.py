"""Tests for the Trainer's distribution strategies, each trained on a toy Keras model."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from crossfade.components.trainer import distribution


def _fit_in_scope(strategy: tf.distribute.Strategy) -> float:
    """Trains y = 2x under `strategy` and returns the learned weight."""
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.layers.Dense(1, use_bias=False)])
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
    dataset = tf.data.Dataset.from_tensor_slices((x, 2 * x)).batch(16).repeat()
    model.fit(dataset, epochs=20, steps_per_epoch=4, verbose=0)
    return float(model.layers[0].kernel.numpy()[0, 0])


def test_default_is_the_no_op_one_device_strategy():
    strategy = distribution.strategy_from_name("default")
    assert strategy is tf.distribute.get_strategy()
    assert not tf.distribute.has_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert _fit_in_scope(strategy) == pytest.approx(2.0, abs=0.05)


def test_mirrored_trains_across_local_devices():
    strategy = distribution.strategy_from_name("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync >= 1
    assert _fit_in_scope(strategy) == pytest.approx(2.0, abs=0.05)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="multi_worker_mirrored"):
        distribution.strategy_from_name("tpu")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


# Multi-worker strategies must be created before any other TensorFlow op of their process.
_WORKER = textwrap.dedent("""
    import json
    import tensorflow as tf
    from crossfade.components.trainer import distribution
    strategy = distribution.strategy_from_name("multi_worker_mirrored")
    resolver = strategy.cluster_resolver
    print(json.dumps({
        "multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "replicas": strategy.num_replicas_in_sync,
        "task": [resolver.task_type, resolver.task_id]}))
""")


@pytest.mark.parametrize("with_tf_config", [False, True], ids=["no_tf_config", "tf_config"])
def test_multi_worker_mirrored_reads_the_cluster_from_tf_config(with_tf_config):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    if with_tf_config:  # a one-worker cluster: the same code path as many workers
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{_free_port()}"]},
                                       "task": {"type": "worker", "index": 0}})
    result = subprocess.run([sys.executable, "-c", _WORKER], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["multi_worker"]
    assert report["replicas"] == 1
    if with_tf_config:
        assert report["task"] == ["worker", 0]
