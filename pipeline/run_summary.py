"""What the latest pipeline run did, read back from ML Metadata and its artifacts.

Used by `crossfade run` (the final summary) and `crossfade status`.
"""
import dataclasses
import json
import os
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata as tfx_metadata

from crossfade.components.listening_data.play_checks import (
    LIKE_COUNT_NAMES,
    LIKES_READ,
    READ_COUNT_NAMES,
)
from crossfade.components.simulation_gate import executor as gate_executor
from crossfade.components.stream_qualification import executor
from crossfade.components.trainer.run_config import TRAINING_STATS_FILE
from crossfade.components.tuner import trials as tuner_trials
from crossfade.pipeline import run_lock
from crossfade.pipeline.configs import PipelineConfig
from crossfade.serving.model_base_path import served_versions

PIPELINE_RUN_CONTEXT = "pipeline_run"
STREAM_COUNT_NAMES = executor.COUNT_NAMES + ("bot_accounts",)
NODE_CONTEXT = "node"
INTERRUPTED = "INTERRUPTED"  # RUNNING in ML Metadata, but no process runs it any more
_STATE_NAMES = {value: name for name, value in
                metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass
class RunSummary:
    """The latest run: component states, candidate metrics, blessing and push."""

    run_id: str
    component_states: Dict[str, str]
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    baseline_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    blessed: Optional[bool] = None  # the blessing the Pusher read (the simulation gate's)
    evaluator_blessed: Optional[bool] = None
    # The simulation gate's simulated A/B test: the candidate's metrics, the pushed model's
    # stream rate (baseline_stream_rate) and why it decided as it did.
    simulation: Dict[str, float] = dataclasses.field(default_factory=dict)
    simulation_reason: str = ""
    pushed: Optional[bool] = None
    pushed_version: Optional[str] = None
    pushed_path: Optional[str] = None
    training: Dict[str, object] = dataclasses.field(default_factory=dict)
    # The Tuner's search when the run tuned (`_read_tuning`): the objective, the winner
    # (best_trial_id, best_score, best_values), trial counts and every trial's record.
    tuning: Dict[str, object] = dataclasses.field(default_factory=dict)
    stream_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
    # Plays rows the ExampleGen dropped on reading and what likes did (play_checks).
    read_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
    serving_base_path: str = ""
    served_versions: List[str] = dataclasses.field(default_factory=list)
    # "<component id>/<artifact type>" -> URI of that output in this run (cached or new).
    artifact_uris: Dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def render(self) -> str:
        lines = [f"Run {self.run_id}"]
        for component, state in sorted(self.component_states.items()):
            lines.append(f"  {component:<28} {state}")
        if self.metrics:
            lines.append("Evaluation (eval split, candidate model"
                         + (" vs latest blessed)" if self.baseline_metrics else ")"))
            for name, value in sorted(self.metrics.items()):
                baseline = self.baseline_metrics.get(name)
                suffix = f"   (blessed baseline {baseline:.4f})" if baseline is not None else ""
                lines.append(f"  {name:<24} {value:.4f}{suffix}")
        if self.stream_counts:
            c = self.stream_counts
            lines.append(
                f"Stream qualification: {c.get('plays_in', 0):,} plays in, "
                f"{c.get('streams', 0):,} streams, {c.get('skips', 0):,} skips, "
                f"{c.get('short_plays', 0):,} other short plays; "
                f"{c.get('bot_accounts', 0)} bot accounts, "
                f"{c.get('bot_plays_removed', 0):,} bot plays removed; "
                f"{c.get('examples_out', 0):,} examples out")
        if self.read_counts:
            lines.append("Input: " + ", ".join(
                f"{value:,} {name.replace('_', ' ')}" for name, value in
                sorted(self.read_counts.items()) if name in READ_COUNT_NAMES))
        if self.read_counts.get(LIKES_READ):
            lines.append("Likes: " + ", ".join(
                f"{self.read_counts.get(name, 0):,} {name.replace('_', ' ')}"
                for name in LIKE_COUNT_NAMES))
        if self.tuning:
            lines.extend(self._tuning_lines())
        if self.training:
            lines.append(f"Training: {self.training.get('examples_trained')} examples, "
                         f"{self.training.get('examples_per_second', 0):.0f} examples/s")
            if self.training.get("tuned_hyperparameters"):
                lines.append("  with the Tuner's " + format_values(
                    self.training["tuned_hyperparameters"]))
        if self.simulation:
            lines.append("Simulated A/B test (candidate"
                         + (" vs pushed model)" if "baseline_stream_rate" in self.simulation
                            else ")"))
            for name, value in sorted(self.simulation.items()):
                lines.append(f"  {name:<24} {value:.4f}")
        if self.evaluator_blessed is not None and self.simulation_reason:
            lines.append(f"Evaluator blessed: {'yes' if self.evaluator_blessed else 'NO'}; "
                         f"simulation gate: {self.simulation_reason}")
        if self.blessed is not None:
            lines.append(f"Blessed: {'yes' if self.blessed else 'NO'}")
        if self.pushed:
            lines.append(f"Pushed: version {self.pushed_version} -> {self.pushed_path}")
        elif self.pushed is not None:
            lines.append("Pushed: no (model not blessed); serving path unchanged")
        latest = self.served_versions[-1] if self.served_versions else "none"
        lines.append(f"Serving base path: {self.serving_base_path} "
                     f"(versions: {len(self.served_versions)}, latest: {latest})")
        return "\n".join(lines)

    def _tuning_lines(self) -> List[str]:
        t, key = self.tuning, tuner_trials
        lines = [f"Tuning: {t[key.COMPLETED_TRIALS]} trials completed, "
                 f"{t[key.FAILED_TRIALS]} failed; {t[key.OBJECTIVE]} on the eval split; "
                 f"winner trial {t[key.BEST_TRIAL]} ({t[key.BEST_SCORE]:.4f})"]
        for trial in t.get("trials", []):
            mark = "*" if trial["trial_id"] == t[key.BEST_TRIAL] else " "
            score = "failed" if trial.get("score") is None else f"{trial['score']:.4f}"
            lines.append(f" {mark} trial {trial['trial_id']:<4} {score:<8} "
                         + format_values(trial["values"]))
        return lines


def format_values(values: Dict[str, object]) -> str:
    """name=value pairs, numbers to 4 significant digits."""
    return ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in sorted(values.items()))


def _read_tuning(properties) -> Dict[str, object]:
    """The Tuner's record from its best_hyperparameters' custom properties and trials file
    (components/tuner/trials.py)."""
    t = tuner_trials
    tuning: Dict[str, object] = {
        t.OBJECTIVE: properties[t.OBJECTIVE].string_value,
        t.BEST_TRIAL: properties[t.BEST_TRIAL].string_value,
        t.BEST_SCORE: properties[t.BEST_SCORE].double_value,
        t.BEST_VALUES: json.loads(properties[t.BEST_VALUES].string_value),
        t.COMPLETED_TRIALS: properties[t.COMPLETED_TRIALS].int_value,
        t.FAILED_TRIALS: properties[t.FAILED_TRIALS].int_value,
        "trials": []}
    path = properties[t.TRIALS_URI].string_value
    if os.path.exists(path):
        with open(path) as handle:
            tuning["trials"] = json.load(handle)
    return tuning


def _store(config: PipelineConfig) -> metadata_store.MetadataStore:
    if not os.path.exists(config.metadata_path):
        raise FileNotFoundError(f"no pipeline metadata at {config.metadata_path}: "
                                "run `crossfade run` first")
    return metadata_store.MetadataStore(
        tfx_metadata.sqlite_metadata_connection_config(config.metadata_path))


def state_name(execution: metadata_store_pb2.Execution, run_alive: bool) -> str:
    """The execution's state name; RUNNING of a run whose process is gone is INTERRUPTED."""
    state = _STATE_NAMES.get(execution.last_known_state, "UNKNOWN")
    if state in ("NEW", "RUNNING") and not run_alive:
        return INTERRUPTED
    return state


def _component_id(store, execution) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if context.type_id == store.get_context_type(NODE_CONTEXT).id:
            return context.name.split(".", 1)[-1]
    return execution.name or str(execution.id)


def _outputs(store, execution_id: int) -> List[metadata_store_pb2.Artifact]:
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    return store.get_artifacts_by_id(ids) if ids else []


def evaluation_metrics(uri: str) -> Dict[str, Dict[str, float]]:
    """{model name: {metric: value}} of the overall slice of a TFMA ModelEvaluation."""
    import tensorflow_model_analysis as tfma  # heavy; only needed here
    result: Dict[str, Dict[str, float]] = {}
    for metrics_for_slice in tfma.load_metrics(uri):
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for entry in metrics_for_slice.metric_keys_and_values:
            # Diff keys (candidate minus baseline) share the metric's name; skip them.
            if entry.value.HasField("double_value") and not entry.key.is_diff:
                model = entry.key.model_name or "candidate"
                result.setdefault(model, {})[entry.key.name] = entry.value.double_value.value
    return result


def _read_blessing(summary: RunSummary, component: str, properties) -> None:
    blessed = bool(properties["blessed"].int_value)
    if component != gate_executor.COMPONENT_ID:
        summary.evaluator_blessed = blessed
        if summary.blessed is None:  # a pipeline without the gate: the Evaluator's counts
            summary.blessed = blessed
        return
    summary.blessed = blessed
    summary.simulation_reason = properties[gate_executor.REASON_PROPERTY].string_value \
        if gate_executor.REASON_PROPERTY in properties else ""
    prefix = gate_executor.CANDIDATE_PREFIX
    summary.simulation = {name[len(prefix):]: value.double_value
                          for name, value in properties.items() if name.startswith(prefix)}
    if gate_executor.BASELINE_RATE_PROPERTY in properties:
        summary.simulation["baseline_stream_rate"] = \
            properties[gate_executor.BASELINE_RATE_PROPERTY].double_value


def latest_run(config: PipelineConfig) -> RunSummary:
    """Summary of the most recent pipeline run recorded in `config`'s metadata."""
    store = _store(config)
    runs = store.get_contexts_by_type(PIPELINE_RUN_CONTEXT)
    if not runs:
        raise LookupError(f"no pipeline run recorded in {config.metadata_path}")
    run = max(runs, key=lambda context: (context.create_time_since_epoch, context.id))
    # ML Metadata keeps RUNNING after a killed run; the run lock says whether one is alive.
    running = run_lock.in_progress(config.output_dir)
    summary = RunSummary(run_id=run.name, component_states={},
                         serving_base_path=config.serving_base_path,
                         served_versions=served_versions(config.serving_base_path))
    for execution in store.get_executions_by_context(run.id):
        component = _component_id(store, execution)
        summary.component_states[component] = state_name(execution, running)
        for artifact in _outputs(store, execution.id):
            artifact_type = store.get_artifact_types_by_id([artifact.type_id])[0].name
            summary.artifact_uris[f"{component}/{artifact_type}"] = artifact.uri
            properties = artifact.custom_properties
            if artifact_type == "Examples" and READ_COUNT_NAMES[0] in properties:
                summary.read_counts = {name: properties[name].int_value
                                       for name in READ_COUNT_NAMES + LIKE_COUNT_NAMES
                                       if name in properties}
            if artifact_type == "Examples" and "plays_in" in properties:
                summary.stream_counts = {name: properties[name].int_value
                                         for name in STREAM_COUNT_NAMES if name in properties}
            elif artifact_type == "ModelEvaluation":
                by_model = evaluation_metrics(artifact.uri)
                summary.metrics = by_model.get("candidate", {})
                summary.baseline_metrics = by_model.get("baseline", {})
            elif artifact_type == "ModelBlessing" and "blessed" in properties:
                _read_blessing(summary, component, properties)
            elif artifact_type == "PushedModel" and "pushed" in properties:
                summary.pushed = bool(properties["pushed"].int_value)
                if summary.pushed:
                    summary.pushed_version = properties["pushed_version"].string_value
                    summary.pushed_path = properties["pushed_destination"].string_value
            elif artifact_type == "HyperParameters" and tuner_trials.BEST_TRIAL in properties:
                summary.tuning = _read_tuning(properties)
            elif artifact_type == "ModelRun":
                stats = os.path.join(artifact.uri, TRAINING_STATS_FILE)
                if os.path.exists(stats):
                    with open(stats) as handle:
                        summary.training = json.load(handle)
    return summary
