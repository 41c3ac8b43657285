"""The simulation gate's executor: a short simulated A/B test decides the push.

On simulator-made data (where the listeners' truth is known) the candidate's serving export
(``<model>/Format-Serving``) and the latest version under the serving base path serve the same
simulated listeners (`crossfade.components.simulation.experiment`: the listeners' own randomness
is shared between the arms, so they differ only by what they served). The verdict
(`decision`) is written as a ModelBlessing like the Evaluator's: the ``blessed`` custom
property and a ``BLESSED``/``NOT_BLESSED`` file, the current and baseline model, plus the
simulated metrics as float custom properties (``simulated_<metric>``,
``baseline_simulated_stream_rate``), the ``gate_reason`` and ``simulation_gate.json``.
`crossfade status` shows them. Nothing is written outside the output artifact.

Trade-off: the test serves ``users`` listeners for ``days`` days (default 1,000 for one day,
a few seconds beside two SavedModel loads), enough to see a regression of a few per cent in
stream rate on the default data, not to rank close models; the Evaluator's replay metrics
stay the main gate.
"""
import json
import math
import os
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from crossfade.components.simulation_gate import decision
from crossfade.components.simulation_gate.settings import SimulationGateSettings

COMPONENT_ID = "SimulationGate"  # its id in the pipeline, which `crossfade status` reads
MODEL_KEY = "model"
EVALUATOR_BLESSING_KEY = "evaluator_blessing"
BLESSING_KEY = "blessing"
SETTINGS_KEY = "settings"
DATA_DIR_KEY = "data_dir"
SERVING_BASE_PATH_KEY = "serving_base_path"
RESULT_FILE = "simulation_gate.json"
REASON_PROPERTY = "gate_reason"
CANDIDATE_PREFIX = "simulated_"
BASELINE_RATE_PROPERTY = "baseline_simulated_stream_rate"
GATE_OFF = "the simulation gate is off: the Evaluator's blessing passes through"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        upstream = artifact_utils.get_single_instance(input_dict[EVALUATOR_BLESSING_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        settings = SimulationGateSettings(**json.loads(exec_properties[SETTINGS_KEY]))
        candidate_dir = path_utils.serving_model_path(model.uri)
        baseline_dir = _latest_pushed(exec_properties[SERVING_BASE_PATH_KEY])
        verdict, summaries = _judge(model_utils.is_model_blessed(upstream), settings,
                                    exec_properties[DATA_DIR_KEY], candidate_dir,
                                    baseline_dir)
        logging.info("SimulationGate: %s", verdict.reason)
        _write(blessing, model, baseline_dir, verdict, summaries)


def _latest_pushed(base_path: str) -> Optional[str]:
    from crossfade.serving.model_base_path import served_versions
    versions = served_versions(base_path)
    return os.path.join(base_path, versions[-1]) if versions else None


def _judge(evaluator_blessed: bool, settings: SimulationGateSettings, data_dir: str,
           candidate_dir: str, baseline_dir: Optional[str]):
    """(Verdict, {"candidate": metrics, "baseline": metrics}) of the gate."""
    if not settings.enabled:
        return decision.Verdict(evaluator_blessed, GATE_OFF), {}
    if not evaluator_blessed:
        return decision.verdict(False, True, settings.margin), {}
    from crossfade.components.simulation.simulated_data import NotSimulatedError, SimulatedData
    try:
        data = SimulatedData.load(data_dir)
    except NotSimulatedError as error:
        logging.info("SimulationGate: %s", error)
        return decision.verdict(True, False, settings.margin), {}
    summaries = _simulate(data, settings, candidate_dir, baseline_dir)
    baseline = summaries.get("baseline", {}).get("stream_rate")
    return decision.verdict(True, True, settings.margin, summaries["candidate"]["stream_rate"],
                            baseline), summaries


def _simulate(data, settings: SimulationGateSettings, candidate_dir: str,
              baseline_dir: Optional[str]) -> Dict[str, Dict[str, float]]:
    from crossfade.components.simulation import experiment, metrics, policies
    ids = data.world.catalogue.track_id
    arms = {"candidate": candidate_dir, "baseline": baseline_dir}
    served = [policies.ModelPolicy(name, policies.SavedModelBackend(path), {}, ids,
                                   settings.seed)
              for name, path in arms.items() if path]
    run = experiment.SimulationSettings(users=settings.users, days=settings.days, k=settings.k,
                                     seed=settings.seed)
    done = experiment.run(data, served, run, progress=lambda text: logging.info(text))
    return {arm.policy.name: metrics.summarise(data.world, arm.logs) for arm in done}


def _write(blessing: types.Artifact, model: types.Artifact, baseline_dir: Optional[str],
           verdict: decision.Verdict, summaries: Dict[str, Dict[str, float]]) -> None:
    name = "BLESSED" if verdict.blessed else "NOT_BLESSED"
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    blessing.set_int_custom_property("blessed", int(verdict.blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("baseline_model", baseline_dir or "")
    blessing.set_string_custom_property(REASON_PROPERTY, verdict.reason)
    for metric, value in summaries.get("candidate", {}).items():
        if math.isfinite(value):  # undefined metrics (e.g. no list with two streams) stay out
            blessing.set_float_custom_property(CANDIDATE_PREFIX + metric, float(value))
    if verdict.baseline_stream_rate is not None:
        blessing.set_float_custom_property(BASELINE_RATE_PROPERTY, verdict.baseline_stream_rate)
    record = {"blessed": verdict.blessed, "reason": verdict.reason, "baseline": baseline_dir,
              "metrics": summaries}
    with fileio.open(os.path.join(blessing.uri, RESULT_FILE), "w") as handle:
        handle.write(json.dumps(record, indent=2, sort_keys=True, default=str))
