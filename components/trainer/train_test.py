"""run_fn's helpers that need no pipeline: the served index's tables and the reference day."""
import types

import numpy as np
import tensorflow as tf

from crossfade.components import features
from crossfade.components.trainer import train
from crossfade.components.trainer.catalogue_index import CatalogueIndex
from crossfade.components.trainer.example_columns import Columns
from crossfade.components.trainer.hyperparameters import PARTITIONED_FROM, Hyperparameters


def _catalogue(size: int) -> CatalogueIndex:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(size, 4)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return CatalogueIndex(ids=np.array([f"t{i}" for i in range(size)], dtype=object),
                          embeddings=embeddings, play_counts=np.arange(size) % 3)


def test_the_index_follows_the_setting_and_auto_follows_the_catalogue_size():
    no_bias = types.SimpleNamespace(recency_bias=None)
    catalogue = _catalogue(300)
    tables, stats = train.index_tables(Hyperparameters(), catalogue, no_bias, None)
    assert tables is None and stats == {"kind": "brute_force"}
    assert Hyperparameters().served_index(PARTITIONED_FROM) == "partitioned"
    assert Hyperparameters().served_index(PARTITIONED_FROM - 1) == "brute_force"
    hp = Hyperparameters(index="partitioned", index_partitions=10, index_probe=3)
    tables, stats = train.index_tables(hp, catalogue, no_bias, None)
    members = tables.partitions.members
    assert sorted(members[members >= 0].tolist()) == list(range(300))
    assert stats["kind"] == "partitioned" and stats["default_probe"] == 3
    assert stats["partitions"] == tables.partitions.num_partitions >= 10
    assert not tables.bounds.any()  # no recency bias: no lift


def test_the_reference_day_is_the_newest_plays():
    examples = Columns(
        {features.PLAY_TIME: tf.constant([5 * 86400 + 7, 9 * 86400 - 1, 0], tf.int64)})
    assert train.newest_play_day(examples) == 8


def test_the_optimizer_follows_the_setting_with_its_rate_and_weight_decay():
    expected = {"adagrad": tf.keras.optimizers.Adagrad, "adam": tf.keras.optimizers.Adam,
                "adamw": tf.keras.optimizers.AdamW}
    for name, kind in expected.items():
        decay = 0.004 if name == "adamw" else 0.0
        built = train.optimizer(Hyperparameters(optimizer=name, learning_rate=0.03,
                                                weight_decay=decay))
        assert type(built) is kind
        assert np.isclose(float(built.learning_rate), 0.03)
        if name == "adamw":
            assert np.isclose(built.weight_decay, 0.004)
