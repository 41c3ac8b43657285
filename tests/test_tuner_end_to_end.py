"""The pipeline with its Tuner on `tiny` simulator data, as `crossfade run --tune --tune-trials
2` runs it, then `crossfade status` (about three minutes on 2 cores).

Checked: the Tuner ran two trials (the first the configured values), wrote the standard
`best_hyperparameters` artifact (the winner's keras_tuner config, alone in its folder) with
the trials' record in ML Metadata; the Trainer trained the winner laid over the configured
settings and recorded both in its training stats; its model scores on the eval split what
the winning trial scored (the same training, seed and ranking); and `crossfade status` lists
each trial's values and score and marks the winner. The run's folder is removed afterwards.
"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from crossfade.components.listening_data.simulator import generator
from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.components.tuner import search_space, trials
from crossfade.pipeline import configs, run_summary

TRIALS = 2
# Tiny data has ~20k training plays: the end-to-end test's batches and epochs.
TINY_TRAINING = {"batch_size": 1024, "epochs": 10}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crossfade.pipeline.cli", *args],
                          capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuned")
    data_dir, output = str(root / "data"), str(root / "output")
    generator.generate("tiny", data_dir, seed=0)
    settings = sum((["--set", f"{name}={value}"] for name, value in TINY_TRAINING.items()), [])
    run = _cli("run", "--data", data_dir, "--output", output, "--tune", "--tune-trials",
               str(TRIALS), *settings)
    assert run.returncode == 0, run.stderr[-3000:]
    status = _cli("status", "--output", output)
    assert status.returncode == 0, status.stderr[-3000:]
    config = configs.PipelineConfig.for_data(data_dir, output, overrides=TINY_TRAINING)
    yield config, run_summary.latest_run(config), status.stdout, run.stdout
    shutil.rmtree(root)


def test_the_tuner_ran_its_trials_the_first_the_configured_values(tuned):
    config, summary, _, _ = tuned
    assert summary.component_states["CatalogueTuner"] == "COMPLETE"
    tuning = summary.tuning
    assert tuning[trials.COMPLETED_TRIALS] + tuning[trials.FAILED_TRIALS] == TRIALS
    assert tuning[trials.COMPLETED_TRIALS] >= 1
    records = tuning["trials"]
    assert len(records) == TRIALS
    assert records[0]["values"] == search_space.configured_values(config.hyperparameters)
    completed = [r for r in records if r["status"] == trials.COMPLETED]
    winner = max(completed, key=lambda r: r["score"])
    assert tuning[trials.BEST_TRIAL] == winner["trial_id"]
    assert tuning[trials.BEST_SCORE] == pytest.approx(winner["score"])
    assert tuning[trials.BEST_VALUES] == winner["values"]
    for record in completed:
        assert 0.0 < record["score"] <= 1.0
        assert record["metrics"]["recall@50"] == record["score"]
        assert record["metrics"]["eval_plays"] >= config.min_eval_plays


def test_best_hyperparameters_is_the_standard_artifact(tuned):
    _, summary, _, _ = tuned
    folder = summary.artifact_uris["CatalogueTuner/HyperParameters"]
    config_file, = os.listdir(folder)  # TFX's Trainer reads the only file there
    with open(os.path.join(folder, config_file)) as handle:
        assert search_space.tuned_values(json.load(handle)) == \
            summary.tuning[trials.BEST_VALUES]
    assert os.path.isfile(os.path.join(summary.artifact_uris["CatalogueTuner/TunerResults"],
                                       trials.TRIALS_FILE))


def test_the_trainer_trained_the_winner_over_the_configured_settings(tuned):
    config, summary, _, _ = tuned
    winner = summary.tuning[trials.BEST_VALUES]
    stats = summary.training
    assert stats["tuned_hyperparameters"] == winner
    assert stats["configured_hyperparameters"] == dataclasses.asdict(config.hyperparameters)
    applied = search_space.overlay(config.hyperparameters, winner)
    assert Hyperparameters.from_dict(stats["hyperparameters"]) == applied
    epochs = 1 if applied.max_steps else applied.epochs
    assert stats["steps"] % epochs == 0 and len(stats["epoch_seconds"]) == epochs


def test_the_trainers_model_is_the_winning_trials(tuned):
    """Same data, hyperparameters, seed and ranking: the Trainer's training ends at the
    winning trial's loss, and the Evaluator's Recall@50 of its model is the trial's score
    (measured: equal; the bounds allow for float summation order only)."""
    _, summary, _, _ = tuned
    winner = next(r for r in summary.tuning["trials"]
                  if r["trial_id"] == summary.tuning[trials.BEST_TRIAL])
    assert summary.training["final_loss"] == pytest.approx(winner["final_loss"], rel=1e-3)
    assert summary.metrics["recall@50"] == pytest.approx(
        summary.tuning[trials.BEST_SCORE], abs=0.01)


def test_status_lists_every_trial_and_marks_the_winner(tuned):
    _, summary, status, run_output = tuned
    best = summary.tuning[trials.BEST_TRIAL]
    assert f"winner trial {best} ({summary.tuning[trials.BEST_SCORE]:.4f})" in status
    trial_lines = [line.split() for line in status.splitlines()
                   if line.lstrip("* ").startswith("trial ")]
    assert len(trial_lines) == TRIALS
    marked = [line for line in trial_lines if line[0] == "*"]
    assert len(marked) == 1 and marked[0][2] == best
    for line, record in zip(trial_lines, summary.tuning["trials"], strict=True):
        assert f"epochs={record['values']['epochs']}," in line
    assert "with the Tuner's " in status
    assert "Tuning: " in run_output  # `crossfade run` prints the same summary
