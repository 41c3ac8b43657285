"""SimulationGate: the TFX component between the Evaluator and the Pusher (see executor.py).

It reads the Evaluator's blessing and emits the one blessing the Pusher reads; the latest
blessed model of the next run is resolved from this component's blessings, so the Evaluator's
baseline is always a model that was pushed.
"""
import dataclasses
import json
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from crossfade.components.simulation_gate import executor
from crossfade.components.simulation_gate.settings import SimulationGateSettings

COMPONENT_ID = executor.COMPONENT_ID


class SimulationGateSpec(ComponentSpec):
    PARAMETERS = {
        executor.SETTINGS_KEY: ExecutionParameter(type=str),
        executor.DATA_DIR_KEY: ExecutionParameter(type=str),
        executor.SERVING_BASE_PATH_KEY: ExecutionParameter(type=str),
        # Keys TFX's cache only: a code change must re-run the component.
        "code_version": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.EVALUATOR_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }
    OUTPUTS = {executor.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)}


class SimulationGate(base_component.BaseComponent):
    """Candidate model + the Evaluator's blessing -> the blessing the Pusher reads.

    On simulator-made data the candidate and the latest pushed model (under
    ``serving_base_path``) serve the simulator's listeners side by side; the candidate is
    blessed only if the Evaluator blessed it and its simulated stream rate did not regress
    beyond ``settings.margin``. On other data the Evaluator's blessing passes through. The
    blessing's custom properties record the simulated rates and the reason.
    """

    SPEC_CLASS = SimulationGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, evaluator_blessing: types.BaseChannel,
                 data_dir: str, serving_base_path: str,
                 settings: Optional[SimulationGateSettings] = None,
                 code_version: str = ""):
        spec = SimulationGateSpec(
            model=model, evaluator_blessing=evaluator_blessing,
            settings=json.dumps(dataclasses.asdict(settings or SimulationGateSettings()),
                                sort_keys=True),
            data_dir=data_dir, serving_base_path=serving_base_path, code_version=code_version,
            blessing=types.Channel(type=standard_artifacts.ModelBlessing))
        super().__init__(spec=spec)
