"""A TFX Trainer that also takes the track catalogue as a real input channel.

The TFX-TFRS tutorial hands the catalogue to the Trainer through `custom_config`, which only
works inside InteractiveContext (tensorflow/tfx#5885). Here the catalogue is an `Examples`
channel declared in the component spec, so orchestrators track it as a dependency (caching,
lineage, KFP wiring) like any other input; the executor passes its split URIs to `run_fn`.
The Tuner (components/tuner/component.py) declares the same inputs (`CATALOGUE_INPUTS`) and
passes them on the same way (`catalogue_config`).

With a Tuner in the pipeline the Trainer also takes its `best_hyperparameters` (TrainerSpec's
optional `hyperparameters` input): TFX's GenericExecutor loads that keras_tuner config into
`fn_args.hyperparameters`, and `run_fn` lays its values over the configured ones.
"""
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from crossfade.components.example_gen.listening_example_gen import CATALOGUE_SPLIT
from crossfade.components.example_gen.split_protocols import TRAIN_SPLIT
from crossfade.components.stream_qualification.component import TopChart
from crossfade.components.trainer.run_config import CATALOGUE_URIS_KEY, CHART_URI_KEY

CATALOGUE_KEY = "catalogue"
CHART_KEY = "chart"
# The catalogue and the optional top chart (the cold-start ranking), as spec inputs.
CATALOGUE_INPUTS = {
    CATALOGUE_KEY: ChannelParameter(type=standard_artifacts.Examples),
    CHART_KEY: ChannelParameter(type=TopChart, optional=True),
}


def catalogue_config(input_dict: Dict[str, List[types.Artifact]]) -> Dict[str, Any]:
    """The `custom_config` entries that locate the catalogue's examples and the chart."""
    catalogue_uri = artifact_utils.get_split_uri(input_dict[CATALOGUE_KEY], CATALOGUE_SPLIT)
    config: Dict[str, Any] = {CATALOGUE_URIS_KEY: [catalogue_uri + "/*"]}
    if input_dict.get(CHART_KEY):
        config[CHART_URI_KEY] = artifact_utils.get_single_uri(input_dict[CHART_KEY])
    return config


class CatalogueTrainerSpec(standard_component_specs.TrainerSpec):
    """TrainerSpec plus the `catalogue` input and the optional top `chart` (cold start)."""

    INPUTS = {**standard_component_specs.TrainerSpec.INPUTS, **CATALOGUE_INPUTS}


class CatalogueTrainerExecutor(trainer_executor.GenericExecutor):
    """GenericExecutor that adds the catalogue's example file patterns to `custom_config`."""

    def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                   output_dict: Dict[str, List[types.Artifact]],
                   exec_properties: Dict[str, Any]) -> fn_args_utils.FnArgs:
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        fn_args.custom_config = {**(fn_args.custom_config or {}),
                                 **catalogue_config(input_dict)}
        return fn_args


class CatalogueTrainer(base_component.BaseComponent):
    """Trainer(examples, transform_graph, catalogue[, chart][, hyperparameters]) -> model,
    model_run."""

    SPEC_CLASS = CatalogueTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(CatalogueTrainerExecutor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 catalogue: types.BaseChannel, run_fn: str,
                 chart: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None,
                 train_args: Optional[trainer_pb2.TrainArgs] = None,
                 eval_args: Optional[trainer_pb2.EvalArgs] = None,
                 custom_config: Optional[Dict[str, Any]] = None):
        spec = CatalogueTrainerSpec(
            examples=examples,
            transform_graph=transform_graph,
            catalogue=catalogue,
            chart=chart,
            hyperparameters=hyperparameters,
            train_args=train_args or trainer_pb2.TrainArgs(splits=[TRAIN_SPLIT]),
            # Evaluation is the Evaluator's job (on raw eval plays); only train is read.
            eval_args=eval_args or trainer_pb2.EvalArgs(splits=[TRAIN_SPLIT], num_steps=0),
            run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config or {}),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun))
        super().__init__(spec=spec)
