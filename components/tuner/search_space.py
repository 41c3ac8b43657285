"""The Tuner's search space over the Trainer's hyperparameters, and how chosen values apply.

`SEARCH_SPACE` (keras_tuner hyperparameters; the oracle samples them). Every name is a field
of `crossfade.components.trainer.hyperparameters.Hyperparameters`:

==================  ==========================  ============================================
name                values                      why
==================  ==========================  ============================================
learning_rate       0.02 .. 0.5, log            Adagrad's step; the default 0.1 and the hand
                                                search's 0.2 (README) inside. With Adam or
                                                AdamW configured 0.0005 .. 0.01, log
                                                (`ADAM_LEARNING_RATE`; Last.fm's 0.002)
temperature         0.02 .. 0.3, log            the softmax temperature; the default 0.05,
                                                Last.fm's 0.1 and the hand search's 0.2
                                                inside
embedding_dim       32, 64, 128                 both towers' output; `id_embedding_dim`
                                                follows it (`TIED`: the track table is shared
                                                by history and candidates, model.py)
history_dropout     0 .. 0.7, step 0.1          Last.fm's 0.6; 0.7 lost in the hand search
id_dropout          0 .. 0.3, step 0.05         the default 0.1; what trains the OOV rows
                                                unknown users and unplayed tracks get
epochs              5, 10, 20, 40               the default 5 to Last.fm's 40; the main
                                                driver of a trial's time
logq_correction     0.75 .. 1.75, step 0.25     the in-batch popularity prior (above 1 more,
                                                below 1 less); on Last.fm with Adagrad 0.5
                                                lost heavily, 2 lost, 1.25-1.5 gained a
                                                little; with Adam 1 was best. Not searched
                                                with catalogue negatives (no effect there)
==================  ==========================  ============================================

Every other field (seed, batch_size, negatives, use_user_id, time_context, the recency and
index settings, ...) stays as configured: a trial's values are laid over the configured
Hyperparameters (`overlay`), and the Trainer lays the winner's over them the same way, so
trial and Trainer train the same model. The ranges are absolute, not relative to the
configured values, so a run on new data searches the same space whatever its preset; the
configured values themselves are the first trial (components/tuner/tuning.py).
"""
import dataclasses
from typing import Dict, List, Mapping

import keras_tuner
from keras_tuner.engine import hyperparameters as kt_hyperparameters

from crossfade.components.trainer.hyperparameters import ADAGRAD, CATALOGUE, Hyperparameters

SEARCH_SPACE = (
    kt_hyperparameters.Float("learning_rate", min_value=0.02, max_value=0.5, sampling="log"),
    kt_hyperparameters.Float("temperature", min_value=0.02, max_value=0.3, sampling="log"),
    kt_hyperparameters.Choice("embedding_dim", [32, 64, 128]),
    kt_hyperparameters.Float("history_dropout", min_value=0.0, max_value=0.7, step=0.1),
    kt_hyperparameters.Float("id_dropout", min_value=0.0, max_value=0.3, step=0.05),
    kt_hyperparameters.Choice("epochs", [5, 10, 20, 40]),
    kt_hyperparameters.Float("logq_correction", min_value=0.75, max_value=1.75, step=0.25),
)
# Adam's good steps are some 50 times smaller than Adagrad's: the learning_rate searched when
# the configured optimizer is Adam or AdamW (the optimizer itself is not searched).
ADAM_LEARNING_RATE = kt_hyperparameters.Float("learning_rate", min_value=0.0005,
                                              max_value=0.01, sampling="log")
# A field that takes its leader's value whenever the leader is chosen and it is not.
TIED = {"embedding_dim": "id_embedding_dim"}


def dimensions(configured: Hyperparameters) -> List[kt_hyperparameters.HyperParameter]:
    """`SEARCH_SPACE` as it applies to `configured`: the learning_rate range of its optimizer,
    and no `logq_correction` with catalogue negatives (nothing sampled: trials differing only
    there would train the same model)."""
    chosen = []
    for dimension in SEARCH_SPACE:
        if dimension.name == "logq_correction" and configured.negatives == CATALOGUE:
            continue
        if dimension.name == "learning_rate" and configured.optimizer != ADAGRAD:
            dimension = ADAM_LEARNING_RATE
        chosen.append(dimension)
    return chosen


def search_space(configured: Hyperparameters) -> keras_tuner.HyperParameters:
    """A fresh keras_tuner HyperParameters holding `dimensions(configured)` (the oracle's
    space)."""
    space = keras_tuner.HyperParameters()
    space.merge(dimensions(configured))
    return space


def configured_values(hp: Hyperparameters) -> Dict[str, object]:
    """`hp`'s own values of the fields searched for it: the first trial."""
    return {dimension.name: getattr(hp, dimension.name) for dimension in dimensions(hp)}


def overlay(configured: Hyperparameters, values: Mapping[str, object]) -> Hyperparameters:
    """`configured` with `values` (field name -> value) in place of its own and each `TIED`
    field following its leader. A name that is no field, or a value its field refuses, is a
    ValueError naming the field."""
    chosen = dict(values)
    for leader, follower in TIED.items():
        if leader in chosen and follower not in chosen:
            chosen[follower] = chosen[leader]
    try:
        return Hyperparameters.from_dict({**dataclasses.asdict(configured), **chosen})
    except ValueError as error:
        raise ValueError(f"tuned hyperparameters {dict(values)}: {error}") from error


def tuned_values(config: Mapping[str, object]) -> Dict[str, object]:
    """The values of a keras_tuner HyperParameters config (what TFX's Tuner writes as
    `best_hyperparameters` and its GenericExecutor loads into `fn_args.hyperparameters`)."""
    if not isinstance(config, Mapping) or not {"space", "values"} <= set(config):
        raise ValueError(f"best_hyperparameters must be a keras_tuner HyperParameters config "
                         f"with 'space' and 'values', got {config!r:.200}")
    return dict(keras_tuner.HyperParameters.from_config(dict(config)).values)
