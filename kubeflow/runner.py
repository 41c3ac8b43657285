"""Compiles the crossfade pipeline into a KFP v2 pipeline spec with KubeflowV2DagRunner.

    python -m crossfade.kubeflow.runner --out crossfade.yaml  # settings: kubeflow/cluster_config.py

The pipeline is `crossfade.pipeline.pipeline.create_pipeline(config)` with its wiring unchanged;
only what a container run needs is adjusted (see `prepare_for_containers`):

* the ExampleGens' `input_base` becomes the runtime parameter `data_root` (default:
  `config.data_dir`), so one compiled spec runs on any data folder of the same layout;
* ImportSchemaGen's `schema_file` points at the schema inside the image (`IMAGE_SOURCE_DIR`,
  where kubeflow/Dockerfile puts this checkout) instead of at this machine's checkout;
* optionally, pods get CPU, memory and accelerators (e.g. GPUs for the Trainer).

Output formats, by the file's extension:

* `.yaml` / `.yml`: the PipelineSpec, as the KFP SDK writes it and `kfp.Client` uploads it;
* anything else (`.json`): a PipelineJob (the spec plus its runtime config), as
  `google.cloud.aiplatform.PipelineJob(template_path=...)` takes it (it takes YAML too).

Both carry the pipeline root (`config.pipeline_root`) and the runtime parameters' defaults in
the spec itself (`defaultPipelineRoot`, `root.inputDefinitions.parameters.*.defaultValue`),
which KubeflowV2DagRunner leaves out, so a run needs no arguments.

Determinism: TFX 1.16's compiler writes no timestamps, run ids or random names into the spec
(labels are the TFX and Python versions; task and dependency lists are sorted), and this module
writes with sorted keys. Compiling the same config twice, in any process, gives the same
bytes; kubeflow/runner_test.py checks that across two processes with different hash seeds.
"""
import argparse
import json
import os
import sys
from typing import Any, Dict, List, Mapping, Optional

import yaml
from tfx.components import FileBasedExampleGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
    KubeflowV2DagRunner,
    KubeflowV2DagRunnerConfig,
)
from tfx.types import standard_component_specs

from crossfade.kubeflow import cluster_config
from crossfade.kubeflow.cluster_config import ResourceSpec
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.import_graph import PACKAGE_ROOT
from crossfade.pipeline.pipeline import create_pipeline

# Where kubeflow/Dockerfile copies this checkout (its WORKDIR).
IMAGE_SOURCE_DIR = "/crossfade"
DATA_ROOT_PARAMETER = "data_root"


def image_path(local_path: str) -> str:
    """Where a file of the crossfade package (PACKAGE_ROOT/...) is inside the pipeline image."""
    relative = os.path.relpath(os.path.abspath(local_path), PACKAGE_ROOT)
    if relative.startswith(os.pardir):
        raise ValueError(f"{local_path} is outside the crossfade package {PACKAGE_ROOT}, so "
                         "it is not in the pipeline image")
    return f"{IMAGE_SOURCE_DIR}/{relative.replace(os.sep, '/')}"


def prepare_for_containers(pipeline: tfx_pipeline.Pipeline, data_root: str,
                           resources: Optional[Mapping[str, ResourceSpec]] = None
                           ) -> List[data_types.RuntimeParameter]:
    """Makes `pipeline` runnable from the image; returns the runtime parameters it added.

    `resources` maps component ids to the CPU, memory and accelerators of their pods. Changes
    exec properties and pod resources only, never the wiring: every component, channel and
    setting of `create_pipeline` reaches the spec as it is.
    """
    by_id = {component.id: component for component in pipeline.components}
    unknown = set(resources or {}) - set(by_id)
    if unknown:
        raise ValueError(f"resources for unknown components {sorted(unknown)}; the pipeline "
                         f"has {sorted(by_id)}")
    for component_id, spec in (resources or {}).items():
        by_id[component_id].with_platform_config(spec)
    data_root_parameter = data_types.RuntimeParameter(
        name=DATA_ROOT_PARAMETER, ptype=str, default=data_root,
        description="Folder of listening data (same layout as at compile time)")
    for component in pipeline.components:
        properties = component.exec_properties
        if isinstance(component, FileBasedExampleGen):
            properties[standard_component_specs.INPUT_BASE_KEY] = data_root_parameter
        elif isinstance(component, ImportSchemaGen):
            key = standard_component_specs.SCHEMA_FILE_KEY
            properties[key] = image_path(properties[key])
    return [data_root_parameter]


def _add_defaults(pipeline_spec: Dict[str, Any], pipeline_root: str,
                  parameters: List[data_types.RuntimeParameter]) -> None:
    """Records the pipeline root and parameter defaults in the spec itself (see module doc)."""
    pipeline_spec["defaultPipelineRoot"] = pipeline_root
    definitions = pipeline_spec["root"]["inputDefinitions"]["parameters"]
    for parameter in parameters:
        definitions[parameter.name]["defaultValue"] = parameter.default
        definitions[parameter.name]["description"] = parameter.description


def compile_job(config: PipelineConfig, image: str, data_root: Optional[str] = None,
                resources: Optional[Mapping[str, ResourceSpec]] = None) -> Dict[str, Any]:
    """The PipelineJob for `config`, as a JSON-ready dict, every step run from `image`.

    `data_root` (default `config.data_dir`) is the data folder runs read by default. Until
    layout detection reads object storage (components/listening_data/sources.py uses
    os.path), `config.data_dir` must be a local folder of the same layout as `data_root`.
    `resources`: see `prepare_for_containers`.
    """
    pipeline = create_pipeline(config)
    parameters = prepare_for_containers(pipeline, data_root or config.data_dir, resources)
    runner = KubeflowV2DagRunner(KubeflowV2DagRunnerConfig(
        display_name=config.pipeline_name, default_image=image,
        # Schema 2.1 (typed `parameterType`) is what KFP 2.x backends expect.
        use_pipeline_spec_2_1=True))
    job = runner.run(pipeline, parameter_values={p.name: p.default for p in parameters},
                     write_out=False)
    _add_defaults(job["pipelineSpec"], config.pipeline_root, parameters)
    return job


class _SpecDumper(yaml.SafeDumper):
    """Writes multi-line strings (artifact schemas, serialized protos) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SpecDumper.add_representer(str, _represent_str)


def write_job(job: Dict[str, Any], output_file: str) -> None:
    """Writes the PipelineSpec (.yaml/.yml) or the whole PipelineJob (otherwise)."""
    directory = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(directory, exist_ok=True)
    if output_file.endswith((".yaml", ".yml")):
        text = yaml.dump(job["pipelineSpec"], Dumper=_SpecDumper, sort_keys=True,
                         default_flow_style=False, width=100)
    else:
        text = json.dumps(job, sort_keys=True, indent=2) + "\n"
    with open(output_file, "w") as handle:
        handle.write(text)


def compile_pipeline(config: PipelineConfig, output_file: str, image: str,
                     data_root: Optional[str] = None,
                     resources: Optional[Mapping[str, ResourceSpec]] = None) -> str:
    """Compiles `config`'s pipeline for KFP v2 / Vertex AI into `output_file`; returns its path.

    See `compile_job` for `data_root` and `resources`, the module docstring for the formats.
    """
    write_job(compile_job(config, image, data_root, resources), output_file)
    return os.path.abspath(output_file)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True,
                        help=".yaml for kfp.Client, .json (PipelineJob) for Vertex AI")
    args = parser.parse_args(argv)
    path = compile_pipeline(cluster_config.pipeline_config(), args.out, cluster_config.image(),
                            cluster_config.data_root(), cluster_config.step_resources())
    print(f"Compiled KFP v2 pipeline spec: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
