"""The Tuner's oracle and trial loop, with training and scoring replaced by stand-ins.

Training itself is the Trainer's code (train.fit_two_tower); the pipeline test
(tests/test_tuner_end_to_end.py) runs it for real. Here the stand-ins record which
hyperparameters each trial trained with and score it by its learning rate, so the search's
bookkeeping is checked exactly: the first trial, the overlay, the winner, a diverged trial.
"""
import dataclasses
import types

import keras_tuner
import numpy as np
import pytest

from crossfade.components.evaluator.eval_config import GATED_METRIC
from crossfade.components.trainer import train
from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.components.tuner import held_out, search_space, trials, tuning

CONFIGURED = Hyperparameters(seed=5, learning_rate=0.1, epochs=10, use_user_id=False)
CONFIG = {"chart_uri": "/chart"}


def _oracle(max_trials: int, seed: int = 5) -> tuning.ConfiguredFirstOracle:
    return tuning.random_search(dataclasses.replace(CONFIGURED, seed=seed), max_trials)


def _values(oracle, count):
    return [oracle.create_trial(f"tuner{i}").hyperparameters.values for i in range(count)]


def test_the_first_trial_is_the_configured_values_then_seeded_random_points(tmp_path):
    first, second = _oracle(4), _oracle(4)
    first._set_project_dir(str(tmp_path / "a"), "p")
    second._set_project_dir(str(tmp_path / "b"), "p")
    values = _values(first, 4)
    assert values[0] == search_space.configured_values(CONFIGURED)
    assert len({tuple(sorted(v.items())) for v in values}) == 4  # no repeats
    for point in values[1:]:
        assert set(point) == {d.name for d in search_space.SEARCH_SPACE}
        assert 0.02 <= point["learning_rate"] <= 0.5 and point["epochs"] in (5, 10, 20, 40)
    assert _values(second, 4) == values  # seeded


def test_with_adam_configured_the_oracle_samples_adams_learning_rates(tmp_path):
    oracle = tuning.random_search(dataclasses.replace(CONFIGURED, optimizer="adam",
                                                      learning_rate=0.002), 6)
    oracle._set_project_dir(str(tmp_path), "p")
    rates = [point["learning_rate"] for point in _values(oracle, 6)]
    assert rates[0] == 0.002 and all(0.0005 <= rate <= 0.01 for rate in rates[1:])


@pytest.fixture
def stand_ins(monkeypatch):
    """Training, indexing and scoring replaced: the 'model' is the hyperparameters it was
    trained with; its score is its learning rate; a learning rate above 0.4 diverges."""
    trained = []

    def fit(data, hp, strategy):
        trained.append(hp)
        loss = float("nan") if hp.learning_rate > 0.4 else 1.0
        return hp, {"final_loss": loss, "train_seconds": 0.5}

    monkeypatch.setattr(train, "fit_two_tower", fit)
    monkeypatch.setattr(train, "catalogue_index", lambda data, model, chart: (
        types.SimpleNamespace(embeddings=np.ones((3, 2), np.float32)), None))
    monkeypatch.setattr(train, "recommender_module", lambda data, model, index, config: model)
    monkeypatch.setattr(held_out, "held_out_metrics", lambda module, patterns: {
        GATED_METRIC: module.learning_rate, "recall@10": module.learning_rate / 2,
        "eval_plays": 7.0})
    return trained


def _search(tmp_path, max_trials, seed=5):
    configured = dataclasses.replace(CONFIGURED, seed=seed)
    tuner = tuning.TwoTowerTuner(tuning.random_search(configured, max_trials), configured,
                                 CONFIG, directory=str(tmp_path), project_name="p",
                                 overwrite=True)
    tuner.search(data=None, held_out_plays=["/eval/*"], strategy=None)
    return tuner


def test_trials_overlay_their_values_and_the_best_score_wins(tmp_path, stand_ins):
    tuner = _search(tmp_path, 6)
    assert stand_ins[0] == CONFIGURED  # trial 0: the configured values, nothing else
    for hp, trial_id in zip(stand_ins, tuner.oracle.start_order, strict=True):
        values = tuner.oracle.trials[trial_id].hyperparameters.values
        assert hp == search_space.overlay(CONFIGURED, values)
        assert hp.seed == 5 and hp.use_user_id is False  # fixed settings stay
    assert len(stand_ins) == 6
    records = trials.trial_records(tuner.oracle, tuner.details)
    completed = [r for r in records if r["status"] == trials.COMPLETED]
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == max(r["score"] for r in completed)
    assert best.score == pytest.approx(
        search_space.overlay(CONFIGURED, best.hyperparameters.values).learning_rate)
    assert completed[0]["metrics"]["eval_plays"] == 7.0
    assert completed[0]["train_seconds"] == 0.5 and completed[0]["seconds"] >= 0


def test_a_diverged_trial_fails_and_is_never_the_winner(tmp_path, stand_ins):
    for seed in range(20):  # a seed whose random points include a diverging one
        tuner = _search(tmp_path / str(seed), 4, seed)
        records = trials.trial_records(tuner.oracle, tuner.details)
        if any(r["status"] != trials.COMPLETED for r in records):
            break
    else:
        pytest.fail("no seed sampled a learning rate above 0.4")
    failed = [r for r in records if r["status"] != trials.COMPLETED]
    assert all(r["score"] is None and "diverged" in r["error"] for r in failed)
    assert len(records) == 4  # the search went on past the failure
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.status == trials.COMPLETED
    assert search_space.overlay(CONFIGURED, best.hyperparameters.values).learning_rate <= 0.4


def test_any_other_error_stops_the_search_at_once(tmp_path, stand_ins, monkeypatch):
    def broken(module, patterns):
        raise FileNotFoundError("no example files match ['/eval/*']")

    monkeypatch.setattr(held_out, "held_out_metrics", broken)
    with pytest.raises(keras_tuner.errors.FatalError, match="trial 0: FileNotFoundError"):
        _search(tmp_path, 5)
    assert len(stand_ins) == 1


def test_the_objective_is_the_evaluators_gate_to_maximise():
    assert tuning.OBJECTIVE.name == GATED_METRIC == "recall@50"
    assert tuning.OBJECTIVE.direction == "max"
    assert isinstance(_oracle(2), keras_tuner.oracles.RandomSearchOracle)
