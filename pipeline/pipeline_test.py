"""create_pipeline wiring, checked without running anything."""
import json

import pytest

from crossfade.components.example_gen import listening_example_gen
from crossfade.components.listening_data.simulator import generator
from crossfade.pipeline.code_version import code_version
from crossfade.pipeline.configs import PIPELINE_NAME, PipelineConfig
from crossfade.pipeline.pipeline import EVALUATOR_MODULE, TUNER_FN, create_pipeline


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wiring")
    generator.generate("tiny", str(root / "data"), seed=1)
    return root


@pytest.fixture(scope="module")
def components(root):
    # A non-default gate setting, to see it reach the Evaluator.
    pipeline = create_pipeline(PipelineConfig(data_dir=str(root / "data"),
                                              output_dir=str(root / "out"),
                                              diversity_regression_tolerance=0.2,
                                              cold_start_regression_tolerance=0.07))
    return {component.id: component for component in pipeline.components}


@pytest.fixture(scope="module")
def tuned(root):
    pipeline = create_pipeline(PipelineConfig(data_dir=str(root / "data"),
                                              output_dir=str(root / "out"), tune=True,
                                              tune_trials=3))
    return {component.id: component for component in pipeline.components}


def _producer(channel):
    return channel.producer_component_id


def test_components_and_data_flow(components):
    assert set(components) == {
        "PlaysExampleGen", "CatalogueExampleGen", "ImportSchemaGen", "StreamQualifier",
        "Transform", "CatalogueTrainer", "LatestBlessedModelResolver", "Evaluator",
        "SimulationGate", "AtomicPusher"}
    assert _producer(components["StreamQualifier"].inputs["examples"]) == "PlaysExampleGen"
    assert _producer(components["Transform"].inputs["examples"]) == "StreamQualifier"
    trainer = components["CatalogueTrainer"].inputs
    # Transform materializes nothing: the Trainer reads the raw plays through its graph.
    assert _producer(trainer["examples"]) == "StreamQualifier"
    assert _producer(trainer["transform_graph"]) == "Transform"
    assert "transformed_examples" not in components["Transform"].outputs
    assert _producer(trainer["catalogue"]) == "CatalogueExampleGen"
    assert _producer(trainer["chart"]) == "StreamQualifier"
    evaluator = components["Evaluator"].inputs
    assert _producer(evaluator["examples"]) == "StreamQualifier"
    assert _producer(evaluator["baseline_model"]) == "LatestBlessedModelResolver"
    assert components["Evaluator"].exec_properties["module_path"] == EVALUATOR_MODULE
    gate = components["SimulationGate"].inputs
    assert _producer(gate["model"]) == "CatalogueTrainer"
    assert _producer(gate["evaluator_blessing"]) == "Evaluator"
    assert _producer(components["AtomicPusher"].inputs["model_blessing"]) == "SimulationGate"
    assert "hyperparameters" not in trainer  # no Tuner: the configured hyperparameters


def test_with_tune_the_tuner_feeds_the_trainer_its_best_hyperparameters(components, tuned):
    assert set(tuned) == set(components) | {"CatalogueTuner"}
    tuner = tuned["CatalogueTuner"]
    assert _producer(tuner.inputs["examples"]) == "StreamQualifier"
    assert _producer(tuner.inputs["transform_graph"]) == "Transform"
    assert _producer(tuner.inputs["catalogue"]) == "CatalogueExampleGen"
    assert _producer(tuner.inputs["chart"]) == "StreamQualifier"
    # Trials are scored on the plays the Evaluator reads (their eval split).
    assert _producer(tuner.inputs["eval_examples"]) == "StreamQualifier"
    assert tuner.inputs["eval_examples"].output_key == \
        tuned["Evaluator"].inputs["examples"].output_key
    hyperparameters = tuned["CatalogueTrainer"].inputs["hyperparameters"]
    assert (_producer(hyperparameters), hyperparameters.output_key) == (
        "CatalogueTuner", "best_hyperparameters")
    config = json.loads(tuner.exec_properties["custom_config"])
    trainer_config = json.loads(tuned["CatalogueTrainer"].exec_properties["custom_config"])
    assert config == {**trainer_config, "tune_trials": 3}  # trials train as the Trainer
    assert tuner.exec_properties["tuner_fn"] == TUNER_FN
    # The Trainer's settings do not change with tuning, only its inputs.
    assert trainer_config == json.loads(
        components["CatalogueTrainer"].exec_properties["custom_config"])


def test_the_baseline_is_the_latest_model_the_gate_blessed(tmp_path):
    """Not merely the latest the Evaluator blessed: a model the gate refused was never pushed."""
    from tfx.dsl.compiler import compiler
    generator.generate("tiny", str(tmp_path / "data"), seed=1)
    ir = compiler.Compiler().compile(create_pipeline(
        PipelineConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out"))))
    resolver = next(node.pipeline_node for node in ir.nodes
                    if node.pipeline_node.node_info.id == "LatestBlessedModelResolver")
    blessings = [channel for spec in resolver.inputs.inputs.values()
                 for channel in spec.channels
                 if channel.artifact_query.type.name == "ModelBlessing"]
    nodes = [[q.name.field_value.string_value for q in c.context_queries
              if q.type.name == "node"] for c in blessings]
    assert nodes == [[f"{PIPELINE_NAME}.SimulationGate"]]
    assert [c.output_key for c in blessings] == ["blessing"]


def test_code_version_keys_the_cache_of_code_running_components(components, tuned):
    version = code_version()
    assert len(version) == 16 and version == code_version()
    assert json.loads(components["Transform"].exec_properties["custom_config"])[
        "code_version"] == version
    assert json.loads(components["CatalogueTrainer"].exec_properties["custom_config"])[
        "code_version"] == version
    assert json.loads(tuned["CatalogueTuner"].exec_properties["custom_config"])[
        "code_version"] == version
    assert components["StreamQualifier"].exec_properties["code_version"] == version
    assert components["SimulationGate"].exec_properties["code_version"] == version
    for example_gen in ("PlaysExampleGen", "CatalogueExampleGen"):
        settings = listening_example_gen.listening_config(
            components[example_gen].exec_properties)
        assert settings["code_version"] == version


def test_the_evaluator_gates_on_the_configured_diversity_tolerance(components):
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    from crossfade.components.evaluator.eval_config import (
        COLD_GATED_METRIC,
        DIVERSITY_GATED_METRIC,
    )
    eval_config = json_format.Parse(components["Evaluator"].exec_properties["eval_config"],
                                    tfma.EvalConfig())
    thresholds = eval_config.metrics_specs[0].thresholds
    assert thresholds[DIVERSITY_GATED_METRIC].value_threshold.lower_bound.value == \
        pytest.approx(-0.2)
    assert thresholds[COLD_GATED_METRIC].value_threshold.lower_bound.value == \
        pytest.approx(-0.07)
