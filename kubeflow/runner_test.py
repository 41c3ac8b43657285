"""The compiled KFP v2 spec: parses with the kfp protos and matches `create_pipeline()`.

The wiring expected here is read from the pipeline object `create_pipeline()` returns, so
the test follows the pipeline as it changes; a few links named in the Kubeflow issue are also
checked by name.
"""
import dataclasses
import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.dsl.components.common import resolver

from crossfade.components.listening_data.simulator import generator
from crossfade.kubeflow import cluster_config, runner
from crossfade.pipeline import beam_args
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import PREPROCESSING_FN, RUN_FN, TUNER_FN, create_pipeline

IMAGE = "europe-docker.pkg.dev/crossfade-test/pipelines/crossfade:1.2.3"
BUCKET = "gs://crossfade-test-bucket"
ENV = {
    "CROSSFADE_IMAGE": IMAGE,
    "CROSSFADE_BUCKET": BUCKET,
    "CROSSFADE_GCP_PROJECT": "crossfade-test",
    "CROSSFADE_GCP_REGION": "europe-west1",
}
EPOCHS = 7  # not the default, to see the config's hyperparameters reach the spec


@pytest.fixture(scope="module")
def layout_dir(tmp_path_factory):
    """A local data folder: compiling reads its layout, never its rows."""
    data_dir = str(tmp_path_factory.mktemp("kfp") / "data")
    generator.generate("tiny", data_dir, seed=0)
    return data_dir


@pytest.fixture(scope="module")
def env(layout_dir):
    return {**ENV, "CROSSFADE_DATA_DIR": layout_dir}


@pytest.fixture(scope="module")
def config(env):
    base = PipelineConfig(data_dir="", output_dir="").with_hyperparameters(epochs=EPOCHS)
    return cluster_config.pipeline_config(env, base)


@pytest.fixture(scope="module")
def compiled(config, tmp_path_factory):
    """(path, PipelineJob proto, PipelineSpec proto) of the JSON compiled from `config`."""
    path = runner.compile_pipeline(config, str(tmp_path_factory.mktemp("out") / "job.json"),
                                   IMAGE, cluster_config.data_root(ENV))
    with open(path) as handle:
        job = json_format.Parse(handle.read(), pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                                 pipeline_spec_pb2.PipelineSpec())
    return path, job, spec


@pytest.fixture(scope="module")
def pipeline(config):
    return create_pipeline(config)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _constant(task: pipeline_spec_pb2.PipelineTaskSpec, name: str):
    value = task.inputs.parameters[name].runtime_value.constant
    return json_format.MessageToDict(value)


def _executors(spec) -> dict:
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def _producer(task: pipeline_spec_pb2.PipelineTaskSpec, name: str):
    source = task.inputs.artifacts[name].task_output_artifact
    return source.producer_task, source.output_artifact_key


def _task_of_output(spec, node_id: str, output_key: str, is_resolver: bool) -> str:
    """The spec task that produces `node_id`'s output (a Resolver becomes one task per output)."""
    if not is_resolver:
        return node_id
    candidates = [name for name, task in spec.root.dag.tasks.items()
                  if name.startswith(node_id + "-") and output_key in
                  spec.components[task.component_ref.name].output_definitions.artifacts]
    assert len(candidates) == 1, (node_id, output_key, candidates)
    return candidates[0]


def test_the_json_is_a_pipeline_job_for_the_configured_pipeline(compiled, config):
    _, job, spec = compiled
    assert spec.pipeline_info.name == config.pipeline_name
    assert spec.schema_version == "2.1.0"
    assert spec.sdk_version == "tfx-1.16.0"
    assert job.runtime_config.gcs_output_directory == config.pipeline_root
    assert spec.default_pipeline_root == config.pipeline_root
    assert config.pipeline_root == f"{BUCKET}/crossfade/pipeline_root"


def test_every_component_is_a_task(compiled, pipeline):
    _, _, spec = compiled
    tasks = set(spec.root.dag.tasks)
    for component in pipeline.components:
        if isinstance(component, resolver.Resolver):
            assert any(task.startswith(component.id + "-") for task in tasks), component.id
        else:
            assert component.id in tasks
    expected_resolver_tasks = {f"LatestBlessedModelResolver-{key}-resolver"
                               for key in ("model", "model-blessing")}
    assert expected_resolver_tasks <= tasks


def _assert_wired_as_created(spec, pipeline):
    """Every task's inputs, outputs and dependencies are those of `pipeline`'s components."""
    resolvers = {c.id for c in pipeline.components if isinstance(c, resolver.Resolver)}
    for component in pipeline.components:
        if component.id in resolvers:
            continue  # its inputs are MLMD queries, checked below
        task = spec.root.dag.tasks[component.id]
        expected = {
            key: (_task_of_output(spec, channel.producer_component_id, channel.output_key,
                                  channel.producer_component_id in resolvers),
                  channel.output_key)
            for key, channel in component.inputs.items()}
        actual = {key: _producer(task, key) for key in task.inputs.artifacts}
        assert actual == expected, component.id
        definition = spec.components[task.component_ref.name]
        assert set(definition.output_definitions.artifacts) == set(component.outputs), \
            component.id
        assert set(definition.input_definitions.artifacts) == set(component.inputs), \
            component.id
        upstream = {producer for producer, _ in expected.values()}
        assert set(task.dependent_tasks) == upstream, component.id


def test_inputs_and_outputs_are_wired_as_in_create_pipeline(compiled, pipeline):
    _, _, spec = compiled
    _assert_wired_as_created(spec, pipeline)


def test_with_the_tuner_on_it_compiles_and_feeds_the_trainer(config, tmp_path):
    tuned = dataclasses.replace(config, tune=True, tune_trials=2)
    path = runner.compile_pipeline(tuned, str(tmp_path / "tuned.json"), IMAGE,
                                   cluster_config.data_root(ENV))
    with open(path) as handle:
        job = json_format.Parse(handle.read(), pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                                 pipeline_spec_pb2.PipelineSpec())
    _assert_wired_as_created(spec, create_pipeline(tuned))
    tasks = spec.root.dag.tasks
    assert _producer(tasks["CatalogueTrainer"], "hyperparameters") == (
        "CatalogueTuner", "best_hyperparameters")
    assert _producer(tasks["CatalogueTuner"], "catalogue") == ("CatalogueExampleGen",
                                                                "examples")
    assert _constant(tasks["CatalogueTuner"], "tuner_fn") == TUNER_FN
    class_paths = {args[args.index("--executor_class_path") + 1]
                   for args in (e["container"]["args"] for e in _executors(spec).values()
                                if "container" in e)}
    assert "crossfade.components.tuner.component.CatalogueTunerExecutor" in class_paths
    for path in (TUNER_FN, "crossfade.components.tuner.component.CatalogueTunerExecutor"):
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_the_links_named_in_the_issue(compiled):
    _, _, spec = compiled
    tasks = spec.root.dag.tasks

    def examples_origin(task_name: str) -> str:
        """Follows `examples` inputs upstream to the ExampleGen they start from."""
        while "examples" in tasks[task_name].inputs.artifacts:
            task_name = _producer(tasks[task_name], "examples")[0]
        return task_name

    assert examples_origin("Transform") == "PlaysExampleGen"
    assert _producer(tasks["Transform"], "schema") == ("ImportSchemaGen", "schema")
    trainer = tasks["CatalogueTrainer"]
    assert _producer(trainer, "examples") == ("StreamQualifier", "qualified_examples")
    assert _producer(trainer, "transform_graph") == ("Transform", "transform_graph")
    assert _producer(trainer, "catalogue") == ("CatalogueExampleGen", "examples")
    evaluator = tasks["Evaluator"]
    assert _producer(evaluator, "model") == ("CatalogueTrainer", "model")
    assert _producer(evaluator, "baseline_model") == (
        "LatestBlessedModelResolver-model-resolver", "model")
    assert examples_origin("Evaluator") == "PlaysExampleGen"
    pusher = tasks["AtomicPusher"]
    assert _producer(pusher, "model") == ("CatalogueTrainer", "model")
    assert _producer(pusher, "model_blessing") == ("SimulationGate", "blessing")
    gate = tasks["SimulationGate"]
    assert _producer(gate, "model") == ("CatalogueTrainer", "model")
    assert _producer(gate, "evaluator_blessing") == ("Evaluator", "blessing")
    # The baseline is the latest *blessed* model: a query on blessings, then on models.
    executors = _executors(spec)
    blessing_query = executors[
        "LatestBlessedModelResolver-model-blessing-resolver_executor"]["resolver"]
    assert "metadata.blessed.number_value=1" in json.dumps(blessing_query)


def test_every_step_runs_the_configured_image(compiled):
    _, _, spec = compiled
    executors = _executors(spec)
    containers = {name: executor["container"] for name, executor in executors.items()
                  if "container" in executor}
    assert len(containers) == len([t for t in spec.root.dag.tasks
                                   if "resolver" not in t])
    for name, container in containers.items():
        assert container["image"] == IMAGE, name


def test_module_paths_are_carried_and_importable(compiled):
    _, _, spec = compiled
    tasks = spec.root.dag.tasks
    assert _constant(tasks["Transform"], "preprocessing_fn") == PREPROCESSING_FN
    assert _constant(tasks["CatalogueTrainer"], "run_fn") == RUN_FN
    executors = _executors(spec)
    class_paths = {args[args.index("--executor_class_path") + 1]
                   for args in (e["container"]["args"] for e in executors.values()
                                if "container" in e)}
    assert "crossfade.components.pusher.atomic_pusher.AtomicPushExecutor" in class_paths
    assert "crossfade.components.trainer.component.CatalogueTrainerExecutor" in class_paths
    # Everything the image must import resolves in this checkout (which the image copies).
    for path in class_paths | {PREPROCESSING_FN, RUN_FN}:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_schema_file_points_into_the_image(compiled):
    _, _, spec = compiled
    schema_file = _constant(spec.root.dag.tasks["ImportSchemaGen"], "schema_file")
    assert schema_file.startswith(runner.IMAGE_SOURCE_DIR + "/")
    relative = schema_file[len(runner.IMAGE_SOURCE_DIR) + 1:]
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__)))
    assert os.path.isfile(os.path.join(checkout, relative))


def test_runtime_parameters_and_settings_are_carried(compiled, config):
    _, job, spec = compiled
    data_root = f"{BUCKET}/data"
    parameter = spec.root.input_definitions.parameters[runner.DATA_ROOT_PARAMETER]
    assert parameter.parameter_type == pipeline_spec_pb2.ParameterType.STRING
    assert parameter.default_value.string_value == data_root
    assert job.runtime_config.parameter_values[runner.DATA_ROOT_PARAMETER].string_value == \
        data_root
    for example_gen in ("PlaysExampleGen", "CatalogueExampleGen"):
        input_base = spec.root.dag.tasks[example_gen].inputs.parameters["input_base"]
        assert input_base.component_input_parameter == runner.DATA_ROOT_PARAMETER
    trainer_config = json.loads(_constant(spec.root.dag.tasks["CatalogueTrainer"],
                                          "custom_config"))
    assert trainer_config["hyperparameters"]["epochs"] == EPOCHS
    push = json.loads(_constant(spec.root.dag.tasks["AtomicPusher"], "push_destination"))
    assert push["filesystem"]["base_directory"] == config.serving_base_path
    # Dataflow Beam args reach every Beam-based step.
    transform_args = _executors(spec)["Transform_executor"]["container"]["args"]
    assert "--runner=DataflowRunner" in transform_args
    assert f"--sdk_container_image={IMAGE}" in transform_args
    assert "--project=crossfade-test" in transform_args


def test_yaml_is_the_same_pipeline_spec(compiled, config, tmp_path):
    path, _, spec = compiled
    yaml_path = runner.compile_pipeline(config, str(tmp_path / "spec.yaml"), IMAGE,
                                        cluster_config.data_root(ENV))
    with open(yaml_path) as handle:
        from_yaml = json_format.ParseDict(yaml.safe_load(handle),
                                          pipeline_spec_pb2.PipelineSpec())
    assert from_yaml == spec


def test_compiling_twice_gives_identical_bytes(compiled, config, env, tmp_path):
    path, _, _ = compiled
    again = runner.compile_pipeline(config, str(tmp_path / "again.json"), IMAGE,
                                    cluster_config.data_root(ENV))
    assert _read(again) == _read(path)
    # Another process, another hash seed, through the command line and the environment.
    other = str(tmp_path / "other.json")
    result = subprocess.run(
        [sys.executable, "-m", "crossfade.kubeflow.runner", "--out", other],
        env={**os.environ, **env, "PYTHONHASHSEED": "12345"}, capture_output=True, text=True,
        timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__))))
    assert result.returncode == 0, result.stderr[-3000:]
    # The command line compiles the default hyperparameters: compare with the same config.
    default = cluster_config.pipeline_config(env)
    expected = runner.compile_pipeline(default, str(tmp_path / "default.json"), IMAGE,
                                       cluster_config.data_root(ENV))
    assert _read(other) == _read(expected)


def test_trainer_resources_from_the_environment(config, env):
    resources = cluster_config.step_resources(
        {**env, "CROSSFADE_TRAINER_ACCELERATOR": "NVIDIA_TESLA_T4",
         "CROSSFADE_TRAINER_ACCELERATOR_COUNT": "2", "CROSSFADE_TRAINER_MEMORY_GB": "30"})
    job = runner.compile_job(config, IMAGE, resources=resources)
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors["CatalogueTrainer_executor"]["container"]["resources"] == {
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "2"}, "memoryLimit": 30.0}
    others = [name for name, executor in executors.items()
              if "resources" in executor.get("container", {})]
    assert others == ["CatalogueTrainer_executor"]
    assert cluster_config.step_resources(env) == {}
    tuned = cluster_config.step_resources({**env, "CROSSFADE_TRAINER_CPU": "8"}, tune=True)
    assert tuned[cluster_config.TUNER_ID] == tuned[cluster_config.TRAINER_ID]
    executors = runner.compile_job(dataclasses.replace(config, tune=True), IMAGE,
                                   resources=tuned)["pipelineSpec"]["deploymentSpec"][
                                       "executors"]
    assert executors["CatalogueTuner_executor"]["container"]["resources"] == {"cpuLimit": 8.0}
    with pytest.raises(ValueError, match="NoSuchTrainer"):
        runner.compile_job(config, IMAGE, resources={"NoSuchTrainer": resources[
            cluster_config.TRAINER_ID]})


def test_cluster_config_from_the_environment(env):
    config = cluster_config.pipeline_config(env)
    assert config.output_dir == f"{BUCKET}/crossfade"
    assert config.serving_base_path == f"{BUCKET}/crossfade/serving/{config.model_name}"
    assert config.beam_pipeline_args == beam_args.dataflow(
        project="crossfade-test", region="europe-west1",
        temp_location=f"{BUCKET}/crossfade/beam-tmp", image=IMAGE)
    direct = cluster_config.pipeline_config({**env, "CROSSFADE_BEAM_RUNNER": "direct",
                                             "CROSSFADE_DIRECT_WORKERS": "8"})
    assert direct.beam_pipeline_args == beam_args.multi_processing(8)
    mysql = cluster_config.metadata_connection_config(
        {"CROSSFADE_MLMD_HOST": "db", "CROSSFADE_MLMD_PASSWORD": "secret"}).mysql
    assert (mysql.host, mysql.port, mysql.database, mysql.user, mysql.password) == (
        "db", 3306, "metadb", "root", "secret")
    with pytest.raises(KeyError, match="CROSSFADE_IMAGE"):
        cluster_config.image({})
