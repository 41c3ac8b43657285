"""Trainer module: `run_fn` trains the two-tower model and exports the serving SavedModel.

The raw training plays are parsed and transformed (the Transform graph, in tf.data) once into
compact in-memory columns and served as freshly shuffled batches each epoch by gathering rows
(components/trainer/example_columns.py), which keeps record parsing off the training hot path.
The catalogue (the Trainer's `catalogue` input channel, see components/trainer/component.py)
is encoded by the trained candidate tower after training, and the index is built from it.

`run_fn` is made of pieces the Tuner's trials (components/tuner/tuning.py) run too, so a trial
trains exactly as the Trainer does: `load_training_data` (once), `fit_two_tower` (seeded by
the hyperparameters), `catalogue_index` and `recommender_module`. With a Tuner in the pipeline
`run_fn` trains its winner laid over the configured hyperparameters
(`trained_hyperparameters`) and records both in the training stats.
"""
import dataclasses
import functools
import json
import logging
import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from crossfade.components import features, heap
from crossfade.components.stream_qualification.executor import CHART_JSON
from crossfade.components.trainer import (
    distribution,
    export,
    recency,
    served_index,
    user_history,
)
from crossfade.components.trainer import model as model_lib
from crossfade.components.trainer.catalogue_index import CatalogueIndex
from crossfade.components.trainer.example_columns import (
    READ_BATCH,
    Columns,
    load_columns,
    shuffled_batches,
)
from crossfade.components.trainer.hyperparameters import ADAM, ADAMW, PARTITIONED, Hyperparameters
from crossfade.components.trainer.run_config import (
    CANDIDATE_POOL_KEY,
    CATALOGUE_URIS_KEY,
    CHART_URI_KEY,
    DEFAULT_K_KEY,
    DISTRIBUTION_STRATEGY_KEY,
    HYPERPARAMETERS_KEY,
    MAX_K_KEY,
    TRAINING_STATS_FILE,
)
from crossfade.serving import warmup

# Training steps per call of Keras' compiled train function: one Python round trip per 16
# steps instead of per step, the same updates (the same final loss) and about 9 % more
# examples/s on the default data (44,100 -> 48,200; README "Speed").
STEPS_PER_EXECUTION = 16


class EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of each training epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)

    def steady_seconds(self) -> List[float]:
        """Epoch times after the first (which includes tracing the training step)."""
        return self.seconds[1:]


def vocabularies(transform_output: tft.TFTransformOutput) -> model_lib.Vocabularies:
    size = transform_output.vocabulary_size_by_name
    return model_lib.Vocabularies(
        users=size(features.USER_VOCABULARY), tracks=size(features.TRACK_VOCABULARY),
        artists=size(features.ARTIST_VOCABULARY), genres=size(features.GENRE_VOCABULARY),
        tags=size(features.TAG_VOCABULARY), platforms=size(features.PLATFORM_VOCABULARY))


def track_play_counts(transform_output: tft.TFTransformOutput) -> Dict[bytes, int]:
    """Training play count of every track, from Transform's frequency vocabulary."""
    path = transform_output.vocabulary_file_by_name(features.TRACK_FREQUENCY_VOCABULARY)
    counts = {}
    with tf.io.gfile.GFile(path, "rb") as handle:
        for line in handle.read().splitlines():
            count, _, track_id = line.partition(b" ")
            counts[track_id] = int(count)
    return counts


def sampling_probabilities(transform_output: tft.TFTransformOutput,
                           counts: Dict[bytes, int]) -> np.ndarray:
    """q per track index (0..V, V = OOV): share of training plays; OOV gets the rarest q."""
    vocabulary = transform_output.vocabulary_by_name(features.TRACK_VOCABULARY)
    track_counts = np.array([counts.get(track_id, 1) for track_id in vocabulary] + [1],
                            dtype=np.float64)
    return (track_counts / track_counts[:-1].sum()).astype(np.float32)


CANDIDATE_TRANSFORMED_FEATURES = (features.TRACK_INDEX, features.ARTIST_INDEX,
                                  features.GENRE_INDICES, features.TAG_INDICES, features.AUDIO)


def transformed_catalogue(transform_output: tft.TFTransformOutput,
                          catalogue_patterns: List[str]
                          ) -> Tuple[Dict[str, np.ndarray], Dict[str, tf.Tensor]]:
    """(raw catalogue features [C, ...] as numpy, transformed candidate features [C, ...])."""
    raw = load_columns(catalogue_patterns, features.CATALOGUE_FEATURE_SPEC).tensors
    layer = transform_output.transform_features_layer()
    parts: Dict[str, List[tf.Tensor]] = {name: [] for name in CANDIDATE_TRANSFORMED_FEATURES}
    size = int(raw[features.TRACK_ID].shape[0])
    for start in range(0, size, READ_BATCH):
        inputs = features.default_raw_values(tf.constant(min(READ_BATCH, size - start)))
        inputs.update({name: values[start:start + READ_BATCH] for name, values in raw.items()
                       if name in inputs})  # the title is display data, not a model input
        transformed = layer(inputs)
        for name in CANDIDATE_TRANSFORMED_FEATURES:
            parts[name].append(transformed[name])
    return ({name: values.numpy() for name, values in raw.items()},
            {name: tf.concat(values, axis=0) for name, values in parts.items()})


def catalogue_rows(transform_output: tft.TFTransformOutput,
                   catalogue_ids: np.ndarray) -> np.ndarray:
    """[V + 1] catalogue row of each track index (OOV and uncatalogued tracks: row 0).

    Every training track is in the catalogue (the ExampleGen checks), so only indices that
    never occur as a training positive map to the placeholder row.
    """
    vocabulary = transform_output.vocabulary_by_name(features.TRACK_VOCABULARY)
    rows = pd.Index(catalogue_ids).get_indexer(vocabulary)
    return np.append(np.maximum(rows, 0), 0).astype(np.int32)


def encode_catalogue(two_tower: model_lib.TwoTowerModel,
                     catalogue: Dict[str, tf.Tensor]) -> np.ndarray:
    """Candidate embeddings [C, D] of the transformed catalogue features."""
    size = int(catalogue[features.TRACK_INDEX].shape[0])
    return np.concatenate([
        two_tower.candidate_tower({name: values[start:start + READ_BATCH]
                                   for name, values in catalogue.items()},
                                  training=False).numpy()
        for start in range(0, size, READ_BATCH)])


def cold_start_scores(catalogue_ids: np.ndarray, play_counts: np.ndarray,
                      chart_dir: str) -> Tuple[np.ndarray, dict]:
    """Scores in [0, 1] ranking catalogue rows for cold queries, and the chart used.

    Charted tracks rank first, by their streams on the chart's day; the rest follow by
    training plays, scaled below every charted track.
    """
    with tf.io.gfile.GFile(os.path.join(chart_dir, CHART_JSON)) as handle:
        chart = json.load(handle)
    streams = {row["track_id"].encode(): row["streams"] for row in chart["tracks"]}
    charted = np.array([streams.get(track_id, 0) for track_id in catalogue_ids], np.float64)
    scores = 0.49 * play_counts / max(play_counts.max(), 1)
    if charted.max() > 0:
        scores = np.where(charted > 0, 0.5 + 0.5 * charted / charted.max(), scores)
    return scores.astype(np.float32), chart


def stored_histories(examples: Columns, sizes: model_lib.Vocabularies) -> np.ndarray:
    """Every training user's latest history (components/trainer/user_history.py)."""
    columns = examples.tensors  # as held (int32 indices): the stored rows are int32 too
    return user_history.latest_histories(
        columns[features.USER_INDEX].numpy(), columns[features.TRACK_INDEX].numpy(),
        columns[features.RECENT_TRACK_INDICES].numpy(), columns[features.PLAY_TIME].numpy(),
        users=sizes.users, padding_index=sizes.tracks + 1)


def write_warmup_requests(export_dir: str, transform_output: tft.TFTransformOutput,
                          seed: int, requests: int = 20) -> None:
    """TF Serving warmup requests (assets.extra) from the most active users and tracks.

    Each user gets a history drawn from the most played tracks; one unknown user with no
    history exercises the cold-start path.
    """
    users = [u.decode() for u in
             transform_output.vocabulary_by_name(features.USER_VOCABULARY)[:requests]]
    tracks = [t.decode() for t in
              transform_output.vocabulary_by_name(features.TRACK_VOCABULARY)[:100]]
    rng = np.random.default_rng(seed)
    histories = [list(rng.choice(tracks, size=min(len(tracks), features.HISTORY_LENGTH),
                                 replace=False)) for _ in users]
    warmup.write_warmup_requests(export_dir, users + ["warmup-unknown-user"],
                                 histories + [[]], tracks[:requests], include_recommend=True)


def newest_play_day(examples: Columns) -> int:
    """The UTC day of the newest training play: the first day the model can serve."""
    return int(examples.numpy(features.PLAY_TIME).max()) // recency.SECONDS_PER_DAY


def index_tables(hp: Hyperparameters, catalogue: CatalogueIndex,
                 two_tower: model_lib.TwoTowerModel, reference_day) -> Tuple[
                     "served_index.IndexTables | None", Dict[str, object]]:
    """The partitioned index's tables when `hp` serves the catalogue through one (None
    otherwise), and what to report of them. `reference_day`: None for plays without
    timestamps (the bias then sees every release day as unknown, as it was trained)."""
    if hp.served_index(len(catalogue)) != PARTITIONED:
        return None, {"kind": "brute_force"}
    started = time.perf_counter()
    bias = two_tower.recency_bias
    tables = served_index.build_tables(
        catalogue.embeddings, catalogue.content_only, catalogue.release_days,
        None if bias is None else bias.bias.numpy(), reference_day, hp.index_partitions,
        hp.seed)
    partitions = tables.partitions
    stats = {"kind": PARTITIONED, "partitions": partitions.num_partitions,
             "capacity": partitions.capacity,
             "default_probe": served_index.resolve_probe(hp.index_probe,
                                                         partitions.num_partitions),
             "build_seconds": time.perf_counter() - started}
    logging.info("Partitioned index: %s", stats)
    return tables, stats


def calibrated_probe(module: export.RecommenderModule, two_tower: model_lib.TwoTowerModel,
                     examples: Columns, seed: int) -> Dict[str, object]:
    """Calibrates `module`'s default probe (`RecommenderModule.calibrate_index`) on the
    queries of `served_index.CALIBRATION_QUERIES` training plays drawn at random; returns
    what to report of it."""
    count = examples.size
    rows = np.sort(np.random.default_rng(seed).choice(
        count, min(count, served_index.CALIBRATION_QUERIES), replace=False))
    sample = examples.rows(rows)
    started = time.perf_counter()
    probe, recall = module.calibrate_index(
        two_tower.query_tower(sample, training=False).numpy(),
        recency.request_days(sample[features.PLAY_TIME]).numpy())
    stats = {"default_probe": probe, "calibration_recall": recall,
             "calibration_seconds": time.perf_counter() - started}
    logging.info("Partitioned index calibrated: %s", stats)
    return stats


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What every training run on one Transform output reads, loaded once: `run_fn` trains on
    it once, the Tuner's trials (components/tuner/tuning.py) each in turn."""

    transform_output: tft.TFTransformOutput
    examples: Columns  # transformed training examples, one column per feature
    counts: Dict[bytes, int]  # training plays per track id
    raw_catalogue: Dict[str, np.ndarray]
    catalogue: Dict[str, tf.Tensor]  # transformed candidate features, catalogue order
    sizes: model_lib.Vocabularies

    @property
    def catalogue_ids(self) -> np.ndarray:
        return self.raw_catalogue[features.TRACK_ID]

    @functools.cached_property  # a scan of every play: once, not per trial
    def untimed(self) -> bool:
        """Plays without timestamps (ts 0): no day to age a track by."""
        return not np.any(self.examples.numpy(features.PLAY_TIME) > 0)


def load_training_data(transform_dir: str, train_files: List[str],
                       catalogue_patterns: List[str]) -> TrainingData:
    """Reads the Transform output, the raw training plays (`train_files`) through its
    transform graph (Transform does not materialize, pipeline/pipeline.py) and the
    catalogue."""
    transform_output = tft.TFTransformOutput(transform_dir)
    counts = track_play_counts(transform_output)
    examples = load_columns(train_files, transform_output.raw_feature_spec(),
                            transform_output.transform_features_layer(),
                            narrow=features.SMALL_INT_FEATURES)
    raw_catalogue, catalogue = transformed_catalogue(transform_output, catalogue_patterns)
    return TrainingData(transform_output, examples, counts, raw_catalogue, catalogue,
                        vocabularies(transform_output))


def optimizer(hp: Hyperparameters) -> tf.keras.optimizers.Optimizer:
    """The Keras optimizer `hp.optimizer` names, at `hp.learning_rate`."""
    if hp.optimizer == ADAM:
        return tf.keras.optimizers.Adam(hp.learning_rate)
    if hp.optimizer == ADAMW:
        return tf.keras.optimizers.AdamW(hp.learning_rate, weight_decay=hp.weight_decay)
    return tf.keras.optimizers.Adagrad(hp.learning_rate)


def fit_two_tower(data: TrainingData, hp: Hyperparameters, strategy: tf.distribute.Strategy
                  ) -> Tuple[model_lib.TwoTowerModel, Dict[str, object]]:
    """Builds the TwoTowerModel of `hp` under `strategy` and trains it on `data`'s examples;
    returns it and the training stats (examples, seconds, examples/s, epoch times, steps,
    final loss). Seeded by `hp.seed` here, so the same `hp` on the same data trains the same
    model in a Tuner trial as in the Trainer."""
    tf.keras.utils.set_random_seed(hp.seed)
    epochs = hp.epochs
    dataset, steps = shuffled_batches(data.examples, hp.batch_size, epochs, hp.seed)
    if hp.max_steps > 0:
        epochs, steps = 1, min(steps, hp.max_steps)
    # Plays without timestamps have no day to age a track by; their bias keeps only the
    # content-only lift (the unknown bucket), and the dates still serve release windows.
    release_days = data.raw_catalogue[features.RELEASE_DAY]
    bias_release_days = (np.full_like(release_days, features.NO_RELEASE_DAY) if data.untimed
                         else release_days)
    with strategy.scope():
        two_tower = model_lib.TwoTowerModel(
            data.sizes, hp, sampling_probabilities(data.transform_output, data.counts),
            catalogue=data.catalogue,
            catalogue_row=catalogue_rows(data.transform_output, data.catalogue_ids),
            catalogue_release_days=bias_release_days)
        two_tower.compile(optimizer=optimizer(hp), steps_per_execution=STEPS_PER_EXECUTION)
    epoch_timer = EpochTimer()
    started = time.perf_counter()
    history = two_tower.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=2,
                            callbacks=[epoch_timer])
    seconds = time.perf_counter() - started
    batch_size = min(hp.batch_size, data.examples.size)
    trained = epochs * steps * batch_size
    steady = epoch_timer.steady_seconds()
    steady_speed = (len(steady) * steps * batch_size / sum(steady)) if steady else \
        trained / seconds
    logging.info("Trained on %d examples in %.1f s (%.0f examples/s after the first epoch)",
                 trained, seconds, steady_speed)
    return two_tower, {
        "examples_trained": trained,
        "train_seconds": seconds,
        # Throughput once graphs are traced (epochs after the first); the first epoch also
        # traces the training step, and `train_seconds` includes everything.
        "examples_per_second": steady_speed,
        "wall_examples_per_second": trained / seconds,
        "epoch_seconds": epoch_timer.seconds,
        "steps": epochs * steps,
        "final_loss": float(history.history["loss"][-1]),
    }


def catalogue_index(data: TrainingData, two_tower: model_lib.TwoTowerModel,
                    chart_dir: Optional[str]) -> Tuple[CatalogueIndex, Optional[dict]]:
    """The catalogue as the trained model serves it, and the top chart read from `chart_dir`
    (None without one: cold queries then rank by training plays)."""
    play_counts = np.array([data.counts.get(track_id, 0) for track_id in data.catalogue_ids])
    cold_scores, chart = None, None
    if chart_dir:
        cold_scores, chart = cold_start_scores(data.catalogue_ids, play_counts, chart_dir)
    raw = data.raw_catalogue
    index = CatalogueIndex(
        ids=data.catalogue_ids, embeddings=encode_catalogue(two_tower, data.catalogue),
        play_counts=play_counts, cold_start_scores=cold_scores,
        titles=raw[features.TITLE], artists=raw[features.ARTIST],
        genres=raw[features.GENRES], tags=raw[features.TAGS],
        release_days=raw[features.RELEASE_DAY],
        content_only=data.catalogue[features.TRACK_INDEX].numpy() == data.sizes.tracks)
    return index, chart


def recommender_module(data: TrainingData, two_tower: model_lib.TwoTowerModel,
                       index: CatalogueIndex, config: Dict[str, object],
                       tables: "served_index.IndexTables | None" = None,
                       default_probe: int = 0) -> export.RecommenderModule:
    """The served module of a trained model (`config`: the Trainer's custom_config)."""
    return export.RecommenderModule(
        two_tower, data.transform_output, index, default_k=int(config[DEFAULT_K_KEY]),
        max_k=int(config[MAX_K_KEY]), user_histories=stored_histories(data.examples, data.sizes),
        candidate_pool=int(config[CANDIDATE_POOL_KEY]), index_tables=tables,
        default_probe=default_probe)


def trained_hyperparameters(config: Dict[str, object], tuned: Optional[Dict[str, object]]
                            ) -> Tuple[Hyperparameters, Dict[str, object]]:
    """The hyperparameters to train with and what the stats record of them.

    `config`: the Trainer's custom_config; `tuned`: `fn_args.hyperparameters`, the keras_tuner
    HyperParameters config TFX's GenericExecutor loads from a Tuner's `best_hyperparameters`
    (None without a Tuner). Its values are laid over the configured ones as the Tuner's trials
    laid them (components/tuner/search_space.py), so the Trainer trains the winner.
    """
    configured = config.get(HYPERPARAMETERS_KEY, {})
    hp = Hyperparameters.from_dict(configured)
    if not tuned:
        return hp, {"hyperparameters": configured}
    # Here, not at the top: only a tuned pipeline needs keras_tuner's config reader.
    from crossfade.components.tuner import search_space
    values = search_space.tuned_values(tuned)
    hp = search_space.overlay(hp, values)
    return hp, {"hyperparameters": dataclasses.asdict(hp),
                "configured_hyperparameters": configured, "tuned_hyperparameters": values}


def run_fn(fn_args: FnArgs) -> None:
    """TFX Trainer entry point: trains, exports, then hands the memory it freed back to the
    system, since the local orchestrators run the later components in this process
    (components/heap.py)."""
    _train_and_export(fn_args)
    heap.release_freed_memory()


def _train_and_export(fn_args: FnArgs) -> None:
    """Trains the model `fn_args` describes and writes the SavedModel and training stats."""
    config = fn_args.custom_config or {}
    # First: a multi-worker strategy must exist before any other TensorFlow operation.
    strategy = distribution.strategy_from_name(
        config.get(DISTRIBUTION_STRATEGY_KEY, distribution.DEFAULT))
    hp, hyperparameter_stats = trained_hyperparameters(
        config, getattr(fn_args, "hyperparameters", None))
    data = load_training_data(fn_args.transform_output, fn_args.train_files,
                              config[CATALOGUE_URIS_KEY])
    two_tower, training_stats = fit_two_tower(data, hp, strategy)
    index, chart = catalogue_index(data, two_tower, config.get(CHART_URI_KEY))
    tables, index_stats = index_tables(hp, index, two_tower,
                                       None if data.untimed else newest_play_day(data.examples))
    module = recommender_module(data, two_tower, index, config, tables, hp.index_probe)
    if tables is not None and not hp.index_probe:
        index_stats.update(calibrated_probe(module, two_tower, data.examples, hp.seed))
    export.save(module, fn_args.serving_model_dir)
    write_warmup_requests(fn_args.serving_model_dir, data.transform_output, hp.seed)
    if chart is not None:  # ships with every pushed version, beside the SavedModel
        extra = os.path.join(fn_args.serving_model_dir, warmup.WARMUP_DIR)
        tf.io.gfile.makedirs(extra)
        with tf.io.gfile.GFile(os.path.join(extra, CHART_JSON), "w") as handle:
            json.dump(chart, handle, indent=1)

    stats = {**training_stats,
             "catalogue_size": int(len(data.catalogue_ids)),
             "index": index_stats,
             **hyperparameter_stats}
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, TRAINING_STATS_FILE), "w") as f:
        json.dump(stats, f, indent=2)
