"""`crossfade status`'s rendering of the read counts, what likes did and the Tuner's search."""
import json
import os

from tfx.types import standard_artifacts

from crossfade.components.listening_data import play_checks
from crossfade.components.tuner import trials
from crossfade.pipeline import run_summary
from crossfade.pipeline.run_summary import RunSummary


def _summary(**counts) -> RunSummary:
    read = {name: 0 for name in play_checks.READ_COUNT_NAMES + play_checks.LIKE_COUNT_NAMES}
    return RunSummary(run_id="r", component_states={}, read_counts={**read, **counts})


def test_likes_are_shown_only_when_the_run_read_some():
    assert "Likes:" not in _summary().render()
    lines = _summary(likes_read=1200, liked_plays_weighted=3000, likes_as_examples=40
                     ).render().splitlines()
    likes = next(line for line in lines if line.startswith("Likes:"))
    assert "1,200 likes read" in likes and "3,000 liked plays weighted" in likes
    inputs = next(line for line in lines if line.startswith("Input:"))
    assert "likes" not in inputs and "0 duplicate plays dropped" in inputs


def _tuned_run(tmp_path) -> RunSummary:
    """A run whose Tuner wrote its record (components/tuner/trials.py) and whose Trainer
    trained the winner, read back as `latest_run` reads them."""
    records = [
        {"trial_id": "0", "status": "COMPLETED", "score": 0.41,
         "values": {"learning_rate": 0.1, "epochs": 5}},
        {"trial_id": "1", "status": "COMPLETED", "score": 0.46,
         "values": {"learning_rate": 0.23456, "epochs": 20}},
        {"trial_id": "2", "status": "FAILED", "score": None, "error": "diverged",
         "values": {"learning_rate": 0.5, "epochs": 40}},
    ]
    best_hyperparameters = standard_artifacts.HyperParameters()
    best_hyperparameters.uri = str(tmp_path / "best")
    results = standard_artifacts.TunerResults()
    results.uri = str(tmp_path / "results")
    os.makedirs(results.uri)
    trials.record(best_hyperparameters, results, records, "1", "recall@50")
    tuning = run_summary._read_tuning(best_hyperparameters.mlmd_artifact.custom_properties)
    return RunSummary(run_id="r", component_states={}, tuning=tuning, training={
        "examples_trained": 10, "examples_per_second": 5.0,
        "tuned_hyperparameters": records[1]["values"]})


def test_a_tuned_run_shows_every_trial_its_score_and_the_winner(tmp_path):
    summary = _tuned_run(tmp_path)
    assert summary.tuning["best_values"] == {"learning_rate": 0.23456, "epochs": 20}
    lines = summary.render().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Tuning:"))
    assert lines[head] == ("Tuning: 2 trials completed, 1 failed; recall@50 on the eval split; "
                           "winner trial 1 (0.4600)")
    assert lines[head + 1].split() == ["trial", "0", "0.4100", "epochs=5,",
                                       "learning_rate=0.1"]
    assert lines[head + 2].split() == ["*", "trial", "1", "0.4600", "epochs=20,",
                                       "learning_rate=0.2346"]
    assert lines[head + 3].split()[:4] == ["trial", "2", "failed", "epochs=40,"]
    assert "  with the Tuner's epochs=20, learning_rate=0.2346" in lines
    assert json.loads(summary.to_json())["tuning"]["trials"][2]["error"] == "diverged"


def test_an_untuned_run_shows_no_tuning():
    assert "Tuning" not in _summary().render() and "Tuner" not in _summary().render()
