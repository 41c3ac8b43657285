"""`tuner_fn`: the Tuner's search over the two-tower model's hyperparameters.

**Trials.** Each trial lays its values (search_space.py: `SEARCH_SPACE`) over the configured
Hyperparameters from `custom_config`, as the Trainer gets them, trains the TwoTowerModel on
the train split with the Trainer's own code (`train.fit_two_tower`, seeded by the configured
seed; the data is read once for all trials, `train.load_training_data`) and is scored by the
metric the Evaluator's blessing gates on (`eval_config.GATED_METRIC`, Recall@50), to
maximise. The first trial is the configured values, so the Trainer never gets settings that
scored below them; ties go to the earlier trial (keras_tuner's stable sort).

**Held-out plays: the eval split, raw**, ranked through the trained model's own
`evaluate_examples` signature built in process (held_out.py), so a trial's score is the
Recall@50 the Evaluator would report for that model on the same plays. Why the eval split
and not a slice of train: it exists under every split protocol (time, leave-last-out,
random; Last.fm HetRec has no timestamps, so no time-ordered slice of train exists there), the
ExampleGen already keeps every held-out play out of training and out of every history, and
Transform needs no second pass (it analyses train only and materializes nothing; the model's
own transform graph reads the raw plays, as in training and serving). The trade-off: the
Evaluator then gates the winner on the plays it was chosen on, so the tuned model's eval
metrics (and its regression check against the blessed model) are optimistic by that
selection, more so the more trials run.
The test split is never read; it stays the unbiased figure (`crossfade benchmark quality`).

**Tuner and oracle.** keras_tuner's own Tuner (KerasTuner 1.4 imports Keras 3) refuses
tf-keras / TensorFlow Recommenders models in its trial loop, so `TwoTowerTuner` is a
`BaseTuner` with its own `run_trial`; it saves no model (the Trainer retrains the winner with
the same seed on the same data). The oracle is keras_tuner's random search, seeded with the
configured seed: KerasTuner's Bayesian optimisation samples max(3 x dimensions, 3) random
points (21 over this space) before it models anything, more trials than a run affords. A
trial whose loss or catalogue embeddings are not finite fails (`FailedTrialError`) instead
of scoring: NaN scores would rank every played track first. The search goes on past failed
trials (the executor fails if none completed); any other error in a trial stops it at once
(`FatalError`), as it would fail every trial.
"""
import math
import time
from typing import Any, Dict

import keras_tuner
import numpy as np
import tensorflow as tf
from keras_tuner.engine import base_tuner
from keras_tuner.engine import trial as kt_trial
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from crossfade.components.evaluator.eval_config import GATED_METRIC
from crossfade.components.trainer import distribution, train
from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.components.trainer.run_config import (
    CATALOGUE_URIS_KEY,
    CHART_URI_KEY,
    DISTRIBUTION_STRATEGY_KEY,
    HELD_OUT_URIS_KEY,
    HYPERPARAMETERS_KEY,
    TUNE_TRIALS_KEY,
)
from crossfade.components.tuner import held_out, search_space

OBJECTIVE = keras_tuner.Objective(GATED_METRIC, direction="max")
PROJECT_NAME = "crossfade_tuning"


class ConfiguredFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is `first` (the configured values)."""

    def __init__(self, first: Dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        self.first = dict(first)

    def populate_space(self, trial_id: str) -> Dict[str, Any]:
        if not self.trials:
            return {"status": kt_trial.TrialStatus.RUNNING, "values": dict(self.first)}
        return super().populate_space(trial_id)


class TwoTowerTuner(base_tuner.BaseTuner):
    """Trains and scores one two-tower model per trial (see the module docstring).

    `details` holds what each trial measured besides its score (trial id -> held-out
    metrics, training seconds, final loss), for the executor's record (trials.py).
    """

    def __init__(self, oracle: keras_tuner.Oracle, configured: Hyperparameters,
                 config: Dict[str, Any], **kwargs):
        super().__init__(oracle=oracle, **kwargs)
        self.configured = configured
        self.config = config
        self.details: Dict[str, Dict[str, Any]] = {}

    def run_trial(self, trial: kt_trial.Trial, data: train.TrainingData,
                  held_out_plays: tf.Tensor, strategy: Any) -> Dict[str, float]:
        try:
            return self._scored(trial, data, held_out_plays, strategy)
        except keras_tuner.errors.FailedTrialError:
            raise  # this trial diverged; the search goes on
        except Exception as error:
            # Anything else (a bug, unreadable data) would fail every trial: stop at once
            # rather than after max_trials trainings.
            raise keras_tuner.errors.FatalError(
                f"trial {trial.trial_id}: {type(error).__name__}: {error}") from error

    def _scored(self, trial: kt_trial.Trial, data: train.TrainingData,
                held_out_plays: tf.Tensor, strategy: Any) -> Dict[str, float]:
        started = time.perf_counter()
        hp = search_space.overlay(self.configured, trial.hyperparameters.values)
        two_tower, stats = train.fit_two_tower(data, hp, strategy)
        index, _ = train.catalogue_index(data, two_tower, self.config.get(CHART_URI_KEY))
        if not math.isfinite(stats["final_loss"]) or not np.isfinite(index.embeddings).all():
            raise keras_tuner.errors.FailedTrialError(
                f"training diverged (final loss {stats['final_loss']}): not scored")
        # The exact ranking (no partitioned index): what `evaluate_examples` ranks by anyway.
        module = train.recommender_module(data, two_tower, index, self.config)
        metrics = held_out.held_out_metrics(module, held_out_plays)
        self.details[trial.trial_id] = {
            "metrics": metrics, "final_loss": stats["final_loss"],
            "train_seconds": stats["train_seconds"],
            "seconds": time.perf_counter() - started}
        return {GATED_METRIC: metrics[GATED_METRIC]}


def random_search(configured: Hyperparameters, trials: int) -> ConfiguredFirstOracle:
    """The oracle: `trials` trials, the first `configured`'s values, the rest random points of
    `search_space.dimensions(configured)` seeded by `configured.seed`."""
    return ConfiguredFirstOracle(
        first=search_space.configured_values(configured), objective=OBJECTIVE,
        max_trials=trials, hyperparameters=search_space.search_space(configured),
        tune_new_entries=False, allow_new_entries=False, seed=configured.seed,
        # Diverged trials fail and the search goes on, however many in a row (the executor
        # fails if none completed); any other error stops it at once (TwoTowerTuner.run_trial).
        max_consecutive_failed_trials=trials + 1)


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """TFX Tuner entry point: the tuner and the data its trials train and score on."""
    config = dict(fn_args.custom_config or {})
    # First, as in run_fn: a multi-worker strategy must exist before any other TF operation.
    strategy = distribution.strategy_from_name(
        config.get(DISTRIBUTION_STRATEGY_KEY, distribution.DEFAULT))
    configured = Hyperparameters.from_dict(config.get(HYPERPARAMETERS_KEY, {}))
    tuner = TwoTowerTuner(random_search(configured, int(config[TUNE_TRIALS_KEY])), configured,
                          config, directory=fn_args.working_dir, project_name=PROJECT_NAME,
                          overwrite=True)
    data = train.load_training_data(fn_args.transform_graph_path, fn_args.train_files,
                                    config[CATALOGUE_URIS_KEY])
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "data": data, "held_out_plays": held_out.read_plays(config[HELD_OUT_URIS_KEY]),
        "strategy": strategy})
