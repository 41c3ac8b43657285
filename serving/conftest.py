"""Fixtures for the serving tests: a pipeline-pushed model, and small stand-in models.

`pushed_model` runs the real pipeline once per test session on `tiny` simulator data (about a
minute and a half on 2 cores). `toy_versions` writes small SavedModels with crossfade's
signature names, inputs and outputs (no Transform graph, a 50-track catalogue) for the tests
of version handling, batching and the REST layer, which need many versions quickly.
"""
import dataclasses
import os
import shutil
from typing import Callable

import numpy as np
import pytest
import tensorflow as tf

from crossfade.serving import model_base_path, warmup

TOY_TRACKS = [f"spotify:track:toy{i:04d}" for i in range(50)]
TOY_MAX_K = 100


@dataclasses.dataclass(frozen=True)
class PushedModel:
    base_path: str  # <output>/serving/crossfade
    version: int
    data_dir: str

    @property
    def path(self) -> str:
        return os.path.join(self.base_path, str(self.version))


@pytest.fixture(scope="session")
def pushed_model(tmp_path_factory) -> PushedModel:
    from crossfade.components.listening_data import simulator
    from crossfade.pipeline import local_runner
    from crossfade.pipeline.configs import PipelineConfig
    root = tmp_path_factory.mktemp("pipeline")
    data_dir = str(root / "data")
    simulator.generate("tiny", data_dir, seed=0)
    config = PipelineConfig(data_dir=data_dir, output_dir=str(root / "output")
                            ).with_hyperparameters(batch_size=1024, epochs=3)
    local_runner.run(config)
    versions = model_base_path.served_versions(config.serving_base_path)
    assert versions, "the pipeline pushed no model (not blessed?)"
    return PushedModel(config.serving_base_path, int(versions[-1]), data_dir)


class ToyRecommender(tf.Module):
    """crossfade's serving signatures over a hashed toy catalogue; `k` > 100 is an
    INVALID_ARGUMENT inside the graph, as in the real model."""

    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        embeddings = rng.standard_normal((len(TOY_TRACKS), 8)).astype(np.float32)
        self.ids = tf.Variable(np.array(TOY_TRACKS, dtype=object), dtype=tf.string)
        self.embeddings = tf.Variable(embeddings / np.linalg.norm(embeddings, axis=1)[:, None])
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(TOY_TRACKS), tf.range(len(TOY_TRACKS))), default_value=-1)

    def _top(self, scores, k):
        requested = tf.reduce_max(tf.concat([k, [0]], axis=0))
        requested = tf.where(requested > 0, requested, 10)
        check = tf.debugging.assert_less_equal(requested, TOY_MAX_K,
                                               message=f"k must be at most {TOY_MAX_K}")
        with tf.control_dependencies([check]):
            count = tf.minimum(requested, len(TOY_TRACKS))
        top = tf.math.top_k(scores, k=count)
        return {"track_ids": tf.gather(self.ids.read_value(), top.indices),
                "scores": top.values}

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name="user_id"),
        tf.TensorSpec([None, None], tf.string, name="recent_track_ids"),
        tf.TensorSpec([None], tf.int64, name="timestamp"),
        tf.TensorSpec([None], tf.string, name="platform"),
        tf.TensorSpec([None], tf.int32, name="k")))
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k):
        embeddings = self.embeddings.read_value()
        rows = tf.strings.to_hash_bucket_fast(user_id, len(TOY_TRACKS))
        query = tf.gather(embeddings, rows)
        return self._top(tf.matmul(query, embeddings, transpose_b=True), k)

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"),
                                  tf.TensorSpec([None], tf.int32, name="k")))
    def similar_tracks(self, track_id, k):
        embeddings = self.embeddings.read_value()
        rows = self.table.lookup(track_id)
        scores = tf.matmul(tf.gather(embeddings, tf.maximum(rows, 0)), embeddings,
                           transpose_b=True)
        result = self._top(scores, k)
        result["found"] = rows >= 0
        return result


def _save_toy(export_dir: str, seed: int, with_warmup: bool) -> None:
    module = ToyRecommender(seed)
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.recommend.get_concrete_function(),
        "similar_tracks": module.similar_tracks.get_concrete_function()})
    if with_warmup:
        warmup.write_warmup_requests(export_dir, ["u1", "u2"], [[TOY_TRACKS[0]], []],
                                     TOY_TRACKS[:3])


@pytest.fixture(scope="session")
def toy_template(tmp_path_factory) -> str:
    """One saved toy model (with warmup requests), copied into place by `toy_versions`."""
    path = str(tmp_path_factory.mktemp("toy") / "model")
    _save_toy(path, seed=0, with_warmup=True)
    return path


@pytest.fixture
def toy_versions(tmp_path, toy_template) -> Callable[..., str]:
    """`push(*versions, base=None)` copies the toy model to `<base>/<version>` for each
    version (base defaults to a fresh folder) and returns the base path."""
    default_base = str(tmp_path / "models" / "toy")

    def push(*versions: int, base: str = None) -> str:
        base = base or default_base
        os.makedirs(base, exist_ok=True)
        for version in versions:
            staging = os.path.join(base, f".staging-{version}")
            shutil.copytree(toy_template, staging)
            os.rename(staging, os.path.join(base, str(version)))
        return base

    return push

