"""The Tuner component's inputs and its executor, around a stand-in `tuner_fn`.

The stand-in records the `custom_config` it receives and runs a tuner scored by the trial's
learning rate, so the executor's own work is checked exactly: the catalogue, chart and
held-out locations it adds (the Trainer's keys), TFX's `best_hyperparameters`, the trials'
record in ML Metadata properties and `trials.json`, and a search without a completed trial.
"""
import json
import os

import keras_tuner
import pytest
from keras_tuner.engine import base_tuner
from tfx import types
from tfx.components.tuner.component import TunerFnResult
from tfx.dsl.components.base import base_executor
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, proto_utils

from crossfade.components.evaluator.eval_config import GATED_METRIC
from crossfade.components.example_gen.listening_example_gen import CATALOGUE_SPLIT
from crossfade.components.stream_qualification.component import TopChart
from crossfade.components.trainer import component as trainer_component
from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.components.trainer.run_config import (
    CATALOGUE_URIS_KEY,
    CHART_URI_KEY,
    HELD_OUT_URIS_KEY,
    TUNE_TRIALS_KEY,
)
from crossfade.components.tuner import component, search_space, trials, tuning

STAND_IN = "crossfade.components.tuner.component_test.stand_in_tuner_fn"


class _ByLearningRate(base_tuner.BaseTuner):
    def run_trial(self, trial, fail_after):
        if int(trial.trial_id) >= fail_after:
            raise keras_tuner.errors.FailedTrialError("training diverged")
        hp = search_space.overlay(Hyperparameters(), trial.hyperparameters.values)
        return {GATED_METRIC: hp.learning_rate}


def stand_in_tuner_fn(fn_args) -> TunerFnResult:
    config = fn_args.custom_config
    io_utils.write_string_file(os.path.join(config["record_dir"], "config.json"),
                               json.dumps(config))
    oracle = tuning.random_search(Hyperparameters(), int(config[TUNE_TRIALS_KEY]))
    tuner = _ByLearningRate(oracle, directory=fn_args.working_dir, project_name="p",
                            overwrite=True)
    return TunerFnResult(tuner=tuner, fit_kwargs={"fail_after": config["fail_after"]})


def _artifact(artifact_type, uri, splits=None):
    artifact = artifact_type()
    artifact.uri = str(uri)
    if splits:
        artifact.split_names = artifact_utils.encode_split_names(splits)
    return [artifact]


def _run(tmp_path, fail_after=99):
    inputs = {
        "examples": _artifact(standard_artifacts.Examples, tmp_path / "plays", ["train"]),
        "transform_graph": _artifact(standard_artifacts.TransformGraph, tmp_path / "tft"),
        "catalogue": _artifact(standard_artifacts.Examples, tmp_path / "catalogue",
                               [CATALOGUE_SPLIT]),
        "chart": _artifact(TopChart, tmp_path / "chart"),
        "eval_examples": _artifact(standard_artifacts.Examples, tmp_path / "plays",
                                   ["train", "eval", "test"]),
    }
    outputs = {
        component.BEST_HYPERPARAMETERS_KEY: _artifact(standard_artifacts.HyperParameters,
                                                      tmp_path / "best"),
        component.TUNER_RESULTS_KEY: _artifact(standard_artifacts.TunerResults,
                                               tmp_path / "results"),
    }
    for artifacts in outputs.values():
        os.makedirs(artifacts[0].uri)
    properties = {
        "tuner_fn": STAND_IN,
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["train"])),
        "custom_config": json.dumps({TUNE_TRIALS_KEY: 4, "record_dir": str(tmp_path),
                                     "fail_after": fail_after}),
    }
    executor = component.CatalogueTunerExecutor(base_executor.BaseExecutor.Context(
        tmp_dir=str(tmp_path / "tmp"), unique_id="1"))
    executor.Do(inputs, outputs, properties)
    with open(tmp_path / "config.json") as handle:
        return inputs, outputs, json.load(handle)


def test_the_tuner_declares_the_trainers_catalogue_inputs_and_the_raw_plays():
    spec = component.CatalogueTunerSpec
    for key, parameter in trainer_component.CATALOGUE_INPUTS.items():
        assert spec.INPUTS[key] is parameter
    assert spec.INPUTS[component.EVAL_EXAMPLES_KEY].type is standard_artifacts.Examples
    assert set(standard_component_specs.TunerSpec.INPUTS) < set(spec.INPUTS)
    channels = {key: types.Channel(type=p.type) for key, p in spec.INPUTS.items()
                if key in ("examples", "transform_graph", "catalogue", "chart",
                           "eval_examples")}
    tuner = component.CatalogueTuner(tuner_fn=STAND_IN, custom_config={"a": 1}, **channels)
    assert set(tuner.outputs) == {"best_hyperparameters", "tuner_results"}
    assert json.loads(tuner.exec_properties["custom_config"]) == {"a": 1}


def test_tuner_fn_gets_the_locations_the_trainer_gets_and_the_eval_split(tmp_path):
    inputs, _, config = _run(tmp_path)
    expected = trainer_component.catalogue_config(inputs)
    assert config[CATALOGUE_URIS_KEY] == expected[CATALOGUE_URIS_KEY] == [
        str(tmp_path / "catalogue" / f"Split-{CATALOGUE_SPLIT}" / "*")]
    assert config[CHART_URI_KEY] == str(tmp_path / "chart")
    assert config[HELD_OUT_URIS_KEY] == [str(tmp_path / "plays" / "Split-eval" / "*")]


def test_the_winner_and_every_trial_are_recorded(tmp_path):
    _, outputs, _ = _run(tmp_path)
    best = outputs[component.BEST_HYPERPARAMETERS_KEY][0]
    # TFX's Trainer reads the only file in the folder: the keras_tuner config.
    config_file, = os.listdir(best.uri)
    with open(os.path.join(best.uri, config_file)) as handle:
        winner = search_space.tuned_values(json.load(handle))
    with open(os.path.join(outputs[component.TUNER_RESULTS_KEY][0].uri,
                           trials.TRIALS_FILE)) as handle:
        records = json.load(handle)
    assert [r["trial_id"] for r in records] == ["0", "1", "2", "3"]
    assert records[0]["values"] == search_space.configured_values(Hyperparameters())
    top = max(records, key=lambda r: r["score"])
    assert winner == top["values"] and top["score"] == pytest.approx(winner["learning_rate"])
    properties = best.mlmd_artifact.custom_properties
    assert properties[trials.BEST_TRIAL].string_value == top["trial_id"]
    assert properties[trials.BEST_SCORE].double_value == pytest.approx(top["score"])
    assert json.loads(properties[trials.BEST_VALUES].string_value) == winner
    assert properties[trials.OBJECTIVE].string_value == GATED_METRIC
    assert properties[trials.COMPLETED_TRIALS].int_value == 4
    assert properties[trials.FAILED_TRIALS].int_value == 0
    assert properties[trials.TRIALS_URI].string_value.endswith(trials.TRIALS_FILE)


def test_failed_trials_are_recorded_and_never_win(tmp_path):
    _, outputs, _ = _run(tmp_path, fail_after=2)
    best = outputs[component.BEST_HYPERPARAMETERS_KEY][0].mlmd_artifact.custom_properties
    assert best[trials.COMPLETED_TRIALS].int_value == 2
    assert best[trials.FAILED_TRIALS].int_value == 2
    assert best[trials.BEST_TRIAL].string_value in ("0", "1")


def test_a_search_without_a_completed_trial_fails_the_component(tmp_path):
    with pytest.raises(RuntimeError, match="no Tuner trial completed.*training diverged"):
        _run(tmp_path, fail_after=0)
    assert not os.listdir(tmp_path / "best")
