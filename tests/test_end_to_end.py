"""The whole pipeline on `tiny` simulator data with LocalDagRunner, as `crossfade run` runs it.

One pipeline run is shared by the module (about a minute and a half on 2 cores); later tests
add runs to the same output folder: a deliberately weak model (refused by the Evaluator, then,
with the Evaluator's checks all but off, by the simulation gate), then bad input data.
"""
import collections
import dataclasses
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import json_format

from crossfade.components import features
from crossfade.components.evaluator import extractors
from crossfade.components.listening_data.simulator import generator
from crossfade.components.trainer import export
from crossfade.pipeline import local_runner, run_summary
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import create_pipeline
from crossfade.serving import model_base_path

# Tiny data has ~20k training plays: smaller batches and more epochs than the product default.
TINY_TRAINING = {"batch_size": 1024, "epochs": 10}


def _versions(config: PipelineConfig):
    return model_base_path.served_versions(config.serving_base_path)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data_dir = str(root / "data")
    generator.generate("tiny", data_dir, seed=0)
    config = PipelineConfig(data_dir=data_dir, output_dir=str(root / "output"),
                            ).with_hyperparameters(**TINY_TRAINING)
    local_runner.run(config)
    return config, run_summary.latest_run(config)


def _qualified_plays(config: PipelineConfig, split: str):
    """The plays the Trainer (train) and the Evaluator (eval) saw: after stream qualification."""
    pattern = os.path.join(config.pipeline_root, "StreamQualifier", "qualified_examples", "*",
                           f"Split-{split}", "*")
    dataset = tf.data.TFRecordDataset(glob.glob(pattern), compression_type="GZIP")
    parsed = [tf.io.parse_example(batch, features.RAW_FEATURE_SPEC)
              for batch in dataset.batch(4096)]
    return {name: tf.concat([batch[name] for batch in parsed], axis=0)
            for name in features.RAW_FEATURE_SPEC}


def test_a_blessed_model_is_pushed_in_tf_serving_layout(first_run):
    config, summary = first_run
    assert summary.blessed and summary.pushed
    versions = _versions(config)
    assert versions == [summary.pushed_version]
    version_dir = os.path.join(config.serving_base_path, versions[0])
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version_dir, "variables"))
    assert summary.component_states["AtomicPusher"] == "COMPLETE"


def test_pushed_model_recommends_k_distinct_catalogue_tracks(first_run):
    config, summary = first_run
    model = tf.saved_model.load(os.path.join(config.serving_base_path, summary.pushed_version))
    catalogue = set(pd.read_csv(os.path.join(config.data_dir, "catalogue.csv"))["track_id"])
    user = pd.read_csv(os.path.join(config.data_dir, "users.csv"))["user_id"].iloc[0]
    result = model.signatures[export.SERVING_DEFAULT](
        user_id=tf.constant([user]), recent_track_ids=tf.constant([[""]]),
        timestamp=tf.constant([0], tf.int64), platform=tf.constant(["android"]),
        k=tf.constant([10]))
    ids = [track.decode() for track in result["track_ids"].numpy()[0]]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert set(ids) <= catalogue


def test_held_out_recall_is_at_least_twice_most_popular(first_run):
    """Recomputed here through serving_default, independently of the Evaluator."""
    config, summary = first_run
    model = tf.saved_model.load(os.path.join(config.serving_base_path, summary.pushed_version))
    train_counts = collections.Counter(
        _qualified_plays(config, "train")[features.TRACK_ID].numpy().tolist())
    most_popular = {track for track, _ in train_counts.most_common(50)}
    plays = _qualified_plays(config, "eval")
    hits = popular_hits = 0
    total = int(plays[features.USER_ID].shape[0])
    for start in range(0, total, 2048):
        window = slice(start, start + 2048)
        result = model.signatures[export.SERVING_DEFAULT](
            user_id=plays[features.USER_ID][window],
            recent_track_ids=plays[features.RECENT_TRACK_IDS][window],
            timestamp=plays[features.TIMESTAMP][window],
            platform=plays[features.PLATFORM][window],
            k=tf.fill(tf.shape(plays[features.USER_ID][window]), 50))
        labels = plays[features.TRACK_ID][window].numpy()
        top = result["track_ids"].numpy()
        hits += int(np.sum(np.any(top == labels[:, None], axis=1)))
        popular_hits += sum(label in most_popular for label in labels)
    recall, popular_recall = hits / total, popular_hits / total
    assert recall >= 2 * popular_recall, (recall, popular_recall)
    # The Evaluator measured the same thing through evaluate_examples.
    assert summary.metrics["recall@50"] == pytest.approx(recall, abs=0.02)
    assert summary.metrics["popularity_recall@50"] == pytest.approx(popular_recall, abs=0.02)
    for name in ("recall@10", "recall@100", "ndcg@10", "coverage@10", "coverage@100"):
        assert 0.0 < summary.metrics[name] <= 1.0


def test_a_degraded_model_is_neither_blessed_nor_pushed(first_run):
    config, summary = first_run
    weak = config.with_hyperparameters(max_steps=1)
    local_runner.run(weak)
    weak_summary = run_summary.latest_run(weak)
    assert weak_summary.component_states["CatalogueTrainer"] == "COMPLETE"
    assert weak_summary.blessed is False and weak_summary.pushed is False
    assert weak_summary.metrics["recall@50"] < summary.metrics["recall@50"]
    assert _versions(config) == [summary.pushed_version]


def test_the_simulation_gate_refuses_a_model_the_evaluator_let_through(first_run):
    """A deliberately weak model with the Evaluator's checks all but off: the Evaluator
    blesses it, the simulated A/B test against the pushed model does not."""
    config, summary = first_run
    assert summary.simulation["stream_rate"] > 0  # the first model: measured, no baseline
    assert "baseline_stream_rate" not in summary.simulation
    lenient = dataclasses.replace(config, lift_floor=0.0, regression_tolerance=1.0,
                                  diversity_regression_tolerance=1.0,
                                  cold_start_regression_tolerance=1.0)
    local_runner.run(lenient.with_hyperparameters(max_steps=1))
    weak = run_summary.latest_run(lenient)
    assert weak.component_states["SimulationGate"] == "COMPLETE"
    assert weak.evaluator_blessed is True
    assert weak.blessed is False and weak.pushed is False
    assert weak.simulation["stream_rate"] < 0.98 * weak.simulation["baseline_stream_rate"]
    assert "regression" in weak.simulation_reason
    assert "Simulated A/B test (candidate vs pushed model)" in weak.render()
    assert _versions(config) == [summary.pushed_version]


def _set_cell(path, row, field, value):
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row - 1, field] = value
    table.to_csv(path, index=False)


def _latin1_title(path, row, field):
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row - 1, field] = "Caf<e9>"
    with open(path, "wb") as handle:
        handle.write(table.to_csv(index=False).encode().replace(b"Caf<e9>", b"Caf\xe9"))


def _truncate_last_row(path, row, field):
    with open(path) as handle:
        text = handle.read().rstrip("\n")
    with open(path, "w") as handle:
        handle.write(text.rsplit(",", 1)[0])


# (file, row, field, how it is broken, the message after "field '...': ")
BAD_INPUTS = {
    "not-a-number": ("span", 7, "ms_played", lambda p, r, f: _set_cell(p, r, f, "abc"),
                     "not a number: 'abc'"),
    "future-play": ("span", 7, "ts", lambda p, r, f: _set_cell(p, r, f, "2099-01-01T00:00:00Z"),
                    "play after the run's clock"),
    "newline-in-id": ("span", 7, "username", lambda p, r, f: _set_cell(p, r, f, "user\n7"),
                      "control character"),
    "latin-1": ("catalogue", 3, "title", _latin1_title, "not UTF-8 text (byte 0xe9)"),
    "truncated-row": ("span", None, None, _truncate_last_row, "the row has fewer fields"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_reported_by_file_row_and_field_and_nothing_is_lost(first_run, tmp_path,
                                                                          case):
    config, summary = first_run
    bad_data = str(tmp_path / "bad")
    shutil.copytree(config.data_dir, bad_data)
    which, row, field, corrupt, message = BAD_INPUTS[case]
    span_file = (os.path.join(bad_data, "catalogue.csv") if which == "catalogue" else
                 sorted(glob.glob(os.path.join(bad_data, "plays", "span-*", "plays.csv")))[3])
    if row is None:  # the last row, missing its last field
        columns = pd.read_csv(span_file, dtype=str).columns
        row, field = len(pd.read_csv(span_file, dtype=str)), columns[-1]
    corrupt(span_file, row, field)

    command = [sys.executable, "-m", "crossfade.pipeline.cli", "run", "--data", bad_data,
               "--output", config.output_dir, *sum((["--set", f"{name}={value}"]
                                                     for name, value in TINY_TRAINING.items()),
                                                    [])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{span_file}, row {row}, field '{field}': {message}" in result.stderr
    *_, error_line, pushed_line = result.stderr.rstrip().splitlines()  # Beam logs above them
    assert error_line.startswith("error: bad input data: ") and field in error_line
    assert pushed_line.startswith("Nothing was pushed")
    assert _versions(config) == [summary.pushed_version]

    status = subprocess.run([sys.executable, "-m", "crossfade.pipeline.cli", "status", "--output",
                             config.output_dir], capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "ExampleGen" in status.stdout and "FAILED" in status.stdout
    assert f"latest: {summary.pushed_version}" in status.stdout


def test_stream_qualification_counts_match_the_simulator_truth(first_run):
    config, summary = first_run
    plays = pd.concat(pd.read_csv(path, dtype={"spotify_track_uri": str},
                                  keep_default_na=False)
                      for path in glob.glob(os.path.join(config.data_dir, "plays", "*", "*.csv")))
    plays = plays[plays["spotify_track_uri"] != ""]
    truth_bots = set(pd.read_csv(os.path.join(config.data_dir, "truth", "bots.csv"))["user_id"])
    qualified_dir = glob.glob(os.path.join(config.pipeline_root, "StreamQualifier",
                                           "qualified_examples", "*"))[0]
    with open(os.path.join(qualified_dir, "bot_accounts.txt")) as handle:
        assert set(handle.read().split()) == truth_bots
    human = plays[~plays["username"].isin(truth_bots)]
    stream = human["ms_played"] >= 30_000
    moved_on = (human["skipped"].astype(str).str.lower() == "true") | \
        human["reason_end"].isin(["fwdbtn", "backbtn"])
    counts = summary.stream_counts
    assert counts["plays_in"] == len(plays)
    assert counts["bot_accounts"] == len(truth_bots) > 0
    assert counts["bot_plays_removed"] == len(plays) - len(human)
    assert counts["streams"] == int(stream.sum())
    assert counts["skips"] == int((~stream & moved_on).sum())
    assert counts["short_plays"] == int((~stream & ~moved_on).sum())


def test_batched_evaluation_reports_tfma_s_per_example_metrics(first_run, tmp_path):
    """The Evaluator's extractors (components/evaluator/extractors.py) keep TFMA's batches;
    TFMA's defaults split them into one extract per example. Same model, same eval plays,
    the Evaluator's own config: the same metrics."""
    config, summary = first_run
    evaluator, = [component for component in create_pipeline(config).components
                  if component.id == "Evaluator"]
    eval_config = json_format.Parse(evaluator.exec_properties["eval_config"], tfma.EvalConfig())
    eval_config.metrics_specs[0].ClearField("thresholds")  # no baseline here: metrics only
    def first_output(component, name, *within):  # of the module's first run
        found = glob.glob(os.path.join(config.pipeline_root, component, name, "*"))
        return os.path.join(min(found, key=lambda path: int(os.path.basename(path))), *within)

    split = first_output("StreamQualifier", "qualified_examples", "Split-eval")
    model = tfma.default_eval_shared_model(
        eval_saved_model_path=first_output("CatalogueTrainer", "model", "Format-Serving"),
        eval_config=eval_config)

    def metrics(name, chosen):
        output = str(tmp_path / name)
        tfma.run_model_analysis(eval_shared_model=model, eval_config=eval_config,
                                data_location=os.path.join(split, "*"), extractors=chosen,
                                output_path=output)
        return run_summary.evaluation_metrics(output)["candidate"]

    assert extractors.evaluates_overall_only(eval_config)
    per_example = metrics("per-example", None)
    batched = metrics("batched", extractors.custom_extractors(model, eval_config, None))
    assert set(batched) == set(per_example) and "eval_users" in batched
    for name, value in per_example.items():
        assert batched[name] == pytest.approx(value, rel=1e-9, nan_ok=True), name
    assert batched["eval_plays"] == summary.metrics["eval_plays"] > 0
