"""The Tuner's search space and how its values are laid over the configured hyperparameters."""
import dataclasses

import keras_tuner
import pytest

from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.components.tuner import search_space

# Fixed settings a trial must keep whatever it searches.
CONFIGURED = Hyperparameters(seed=3, negatives="catalogue", use_user_id=False, batch_size=512,
                             embedding_dim=128, id_embedding_dim=128)


def test_every_searched_name_is_a_hyperparameter_and_the_space_is_the_constant():
    fields = {field.name for field in dataclasses.fields(Hyperparameters)}
    names = [dimension.name for dimension in search_space.SEARCH_SPACE]
    assert set(names) <= fields and len(set(names)) == len(names)
    assert [hp.name for hp in search_space.search_space(Hyperparameters()).space] == names
    assert set(search_space.TIED) <= set(names) and set(search_space.TIED.values()) <= fields


def test_a_trial_changes_only_what_it_searched():
    values = {"learning_rate": 0.3, "embedding_dim": 32, "epochs": 20}
    hp = search_space.overlay(CONFIGURED, values)
    assert (hp.learning_rate, hp.embedding_dim, hp.epochs) == (0.3, 32, 20)
    assert hp.id_embedding_dim == 32  # tied: the track table is shared
    unchanged = {name: value for name, value in dataclasses.asdict(CONFIGURED).items()
                 if name not in set(values) | {"id_embedding_dim"}}
    assert {name: getattr(hp, name) for name in unchanged} == unchanged


def test_a_tied_field_chosen_explicitly_is_kept():
    hp = search_space.overlay(CONFIGURED, {"embedding_dim": 64, "id_embedding_dim": 64})
    assert hp.id_embedding_dim == 64
    assert search_space.overlay(CONFIGURED, {}) == CONFIGURED


@pytest.mark.parametrize("values, field", [
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"history_dropout": 1.0}, "history_dropout"),
    ({"epochs": 2.5}, "epochs"),
    ({"embedding_dim": "big"}, "embedding_dim"),
    ({"temprature": 0.1}, "temprature"),
])
def test_bad_values_are_a_value_error_naming_the_field(values, field):
    with pytest.raises(ValueError, match=field):
        search_space.overlay(CONFIGURED, values)


@pytest.mark.parametrize("configured, low, high", [
    (CONFIGURED, 0.02, 0.5),
    (dataclasses.replace(CONFIGURED, optimizer="adam", learning_rate=0.002), 0.0005, 0.01)])
def test_every_point_of_the_space_is_a_valid_setting(configured, low, high):
    space = search_space.search_space(configured)
    for seed in range(200):
        values = {hp.name: hp.random_sample(seed * 31 + i) for i, hp in enumerate(space.space)}
        hp = search_space.overlay(configured, values)
        assert hp.embedding_dim == hp.id_embedding_dim
        assert low <= hp.learning_rate <= high and 0.02 <= hp.temperature <= 0.3


@pytest.mark.parametrize("optimizer, low, high", [("adagrad", 0.02, 0.5),
                                                   ("adam", 0.0005, 0.01),
                                                   ("adamw", 0.0005, 0.01)])
def test_the_learning_rate_range_follows_the_configured_optimizer(optimizer, low, high):
    space = search_space.search_space(Hyperparameters(optimizer=optimizer))
    assert [hp.name for hp in space.space] == [d.name for d in search_space.SEARCH_SPACE]
    rate = space.get_config()["space"][0]["config"]
    assert (rate["name"], rate["min_value"], rate["max_value"]) == ("learning_rate", low, high)


def test_logq_correction_is_searched_only_where_negatives_are_sampled():
    in_batch = search_space.search_space(Hyperparameters()).space
    catalogue = search_space.search_space(CONFIGURED).space  # catalogue negatives
    assert "logq_correction" in {hp.name for hp in in_batch}
    assert [hp.name for hp in catalogue] == [hp.name for hp in in_batch
                                             if hp.name != "logq_correction"]
    assert "logq_correction" not in search_space.configured_values(CONFIGURED)


def test_the_first_trial_is_the_configured_values():
    values = search_space.configured_values(CONFIGURED)
    assert values["embedding_dim"] == 128 and values["epochs"] == CONFIGURED.epochs
    assert search_space.overlay(CONFIGURED, values) == CONFIGURED


def test_tuned_values_read_a_keras_tuner_config():
    space = search_space.search_space(Hyperparameters())
    space.values = {"learning_rate": 0.2, "embedding_dim": 64}
    assert search_space.tuned_values(space.get_config()) == {"learning_rate": 0.2,
                                                             "embedding_dim": 64}
    assert search_space.tuned_values(keras_tuner.HyperParameters().get_config()) == {}
    with pytest.raises(ValueError, match="keras_tuner HyperParameters config"):
        search_space.tuned_values({"learning_rate": 0.2})
