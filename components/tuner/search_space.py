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
                                                below 1 less); on Last.fm 0.5 and 2 lost
                                                heavily, 1.25-1.5 gained a little
==================  ==========================  ============================================

Every other field (seed, batch_size, negatives, use_user_id, time_context, the recency and
index settings, ...) stays as configured: a trial's values are laid over the configured
Hyperparameters (`overlay`), and the Trainer lays the winner's over them the same way, so
trial and Trainer train the same model. The ranges are absolute, not relative to the
configured values, so a run on new data searches the same space whatever its preset; the
configured values themselves are the first trial (components/tuner/tuning.py).
"""
import dataclasses
from typing import Dict, Mapping

import keras_tuner
from keras_tuner.engine import hyperparameters as kt_hyperparameters

from crossfade.components.trainer.hyperparameters import ADAGRAD, Hyperparameters

SEARCH_SPACE = (
    kt_hyperparameters.Float("learning_rate", min_value=0.02, max_value=0.5, sampling="log"),
    kt_hyperparameters.Float("temperature", min_value=0.02, max_value=0.3, sampling="log"),
    kt_hyperparameters.Choice("embedding_dim", [32, 64, 128]),
    kt_hyperparameters.Float("history_dropout", min_value=0.0, max_value=0.7, step=0.1),
    kt_hyperparameters.Float("id_dropout", min_value=0.0, max_value=0.3, step=0.05),
    kt_hyperparameters.Choice("epochs", [5, 10, 20, 40]),
    kt_hyperparameters.Float("logq_correction", min_value=0.75, max_value=1.75, step=0.25),
)
# Adam's steps are two orders of magnitude below Adagrad's: the learning_rate searched when
# the configured optimizer is Adam or AdamW (the optimizer itself is not searched).
ADAM_LEARNING_RATE = kt_hyperparameters.Float("learning_rate", min_value=0.0005,
                                              max_value=0.01, sampling="log")
# A field that takes its leader's value whenever the leader is chosen and it is not.
TIED = {"embedding_dim": "id_embedding_dim"}


def search_space(optimizer: str = ADAGRAD) -> keras_tuner.HyperParameters:
    """A fresh keras_tuner HyperParameters holding `SEARCH_SPACE` (the oracle's space), its
    learning_rate range the one for `optimizer` (the configured optimizer's name)."""
    space = keras_tuner.HyperParameters()
    space.merge([ADAM_LEARNING_RATE if dimension.name == "learning_rate" and
                 optimizer != ADAGRAD else dimension for dimension in SEARCH_SPACE])
    return space


def configured_values(hp: Hyperparameters) -> Dict[str, object]:
    """`hp`'s own values of the searched fields: the first trial."""
    return {dimension.name: getattr(hp, dimension.name) for dimension in SEARCH_SPACE}


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
