"""A TFX Tuner that takes the catalogue as a real input channel, as the Trainer does.

`CatalogueTunerSpec` is TFX's TunerSpec plus the Trainer's `catalogue` and optional `chart`
inputs (tensorflow/tfx#5885: never `custom_config`; components/trainer/component.py) and
`eval_examples`: the qualified raw plays whose eval split scores each trial
(components/tuner/tuning.py says why that split). The executor is TFX's Tuner executor: it
adds the catalogue's and chart's locations (`catalogue_config`, the Trainer's keys) and the
eval split's (`HELD_OUT_URIS_KEY`) to the `custom_config` that `tuner_fn` receives, runs
TFX's `search`, writes the winner with TFX's `write_best_hyperparameters` (the
`best_hyperparameters` keras_tuner config the Trainer takes), and records every trial in ML
Metadata and beside the artifacts (trials.py). A search in which no trial completed fails
the component: keras_tuner would otherwise report a failed trial's values as the best.
"""
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from crossfade.components.example_gen.split_protocols import EVAL_SPLIT, TRAIN_SPLIT
from crossfade.components.trainer.component import CATALOGUE_INPUTS, catalogue_config
from crossfade.components.trainer.run_config import HELD_OUT_URIS_KEY
from crossfade.components.tuner import trials

EVAL_EXAMPLES_KEY = "eval_examples"
BEST_HYPERPARAMETERS_KEY = standard_component_specs.BEST_HYPERPARAMETERS_KEY
TUNER_RESULTS_KEY = standard_component_specs.TUNER_RESULTS_KEY


class CatalogueTunerSpec(standard_component_specs.TunerSpec):
    """TunerSpec plus `catalogue`, the optional `chart` and the raw `eval_examples`."""

    INPUTS = {**standard_component_specs.TunerSpec.INPUTS, **CATALOGUE_INPUTS,
              EVAL_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


def with_input_locations(exec_properties: Dict[str, Any],
                         input_dict: Dict[str, List[types.Artifact]]) -> Dict[str, Any]:
    """`exec_properties` with the catalogue, chart and held-out plays in its custom_config
    (a copy: the recorded execution properties stay as the pipeline set them)."""
    key = standard_component_specs.CUSTOM_CONFIG_KEY
    config = json_utils.loads(exec_properties.get(key) or "null") or {}
    config.update(catalogue_config(input_dict))
    eval_uri = artifact_utils.get_split_uri(input_dict[EVAL_EXAMPLES_KEY], EVAL_SPLIT)
    config[HELD_OUT_URIS_KEY] = [eval_uri + "/*"]
    return {**exec_properties, key: json_utils.dumps(config)}


class CatalogueTunerExecutor(tuner_executor.Executor):
    """TFX's Tuner executor with the catalogue's inputs and the trials' record."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if tuner_executor.get_tune_args(exec_properties):
            raise ValueError("TuneArgs is not supported by this Tuner's executor")
        tuner = tuner_executor.search(input_dict,
                                      with_input_locations(exec_properties, input_dict),
                                      self._get_tmp_dir())
        records = trials.trial_records(tuner.oracle, getattr(tuner, "details", {}))
        if not any(record["status"] == trials.COMPLETED for record in records):
            errors = "; ".join(f"trial {r['trial_id']}: {r.get('error', r['status'])}"
                               for r in records)
            raise RuntimeError(f"no Tuner trial completed ({errors})")
        tuner_executor.write_best_hyperparameters(tuner, output_dict)
        best = tuner.oracle.get_best_trials(1)[0]
        trials.record(artifact_utils.get_single_instance(output_dict[BEST_HYPERPARAMETERS_KEY]),
                      artifact_utils.get_single_instance(output_dict[TUNER_RESULTS_KEY]),
                      records, best.trial_id, tuner.oracle.objective.name)


class CatalogueTuner(base_component.BaseComponent):
    """Tuner(examples, transform_graph, catalogue, eval_examples[, chart]) ->
    best_hyperparameters, tuner_results."""

    SPEC_CLASS = CatalogueTunerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(CatalogueTunerExecutor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 catalogue: types.BaseChannel, eval_examples: types.BaseChannel,
                 tuner_fn: str, chart: Optional[types.BaseChannel] = None,
                 custom_config: Optional[Dict[str, Any]] = None):
        spec = CatalogueTunerSpec(
            examples=examples,
            transform_graph=transform_graph,
            catalogue=catalogue,
            chart=chart,
            eval_examples=eval_examples,
            tuner_fn=tuner_fn,
            train_args=trainer_pb2.TrainArgs(splits=[TRAIN_SPLIT]),
            # Only train is read here; trials are scored on the raw eval split instead
            # (HELD_OUT_URIS_KEY), so TFX's eval_files are never read.
            eval_args=trainer_pb2.EvalArgs(splits=[TRAIN_SPLIT], num_steps=0),
            custom_config=json_utils.dumps(custom_config or {}),
            best_hyperparameters=types.Channel(type=standard_artifacts.HyperParameters),
            tuner_results=types.Channel(type=standard_artifacts.TunerResults))
        super().__init__(spec=spec)
