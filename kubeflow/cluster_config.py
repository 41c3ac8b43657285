"""Settings of a cluster run, read from environment variables.

Variables (default in brackets):

* `CROSSFADE_IMAGE`: the pipeline image (kubeflow/Dockerfile), pushed to a registry the
  cluster can pull from [required].
* `CROSSFADE_BUCKET`: bucket URL, e.g. `gs://my-bucket` [required unless both
  `CROSSFADE_OUTPUT_DIR` and `CROSSFADE_DATA_ROOT` are set].
* `CROSSFADE_OUTPUT_DIR`: output folder, holding `pipeline_root/` (the pipeline root) and
  `serving/<model>/` (the Pusher's base path) [`$CROSSFADE_BUCKET/crossfade`].
* `CROSSFADE_DATA_ROOT`: the data folder runs read, the `data_root` runtime parameter's
  default [`$CROSSFADE_BUCKET/data`].
* `CROSSFADE_DATA_DIR`: a local folder of the same layout, read when compiling (see below)
  [`$CROSSFADE_DATA_ROOT`].
* `CROSSFADE_BEAM_RUNNER`: `dataflow`, or `direct` for the DirectRunner in multi_processing
  mode inside each step's pod [`dataflow`].
* `CROSSFADE_DIRECT_WORKERS`: worker processes per step with `direct`; compiled into the spec,
  so size the step pods to match [`4`].
* `CROSSFADE_GCP_PROJECT`: project of the Dataflow jobs [required for `dataflow`].
* `CROSSFADE_GCP_REGION`: their region [`us-central1`].
* `CROSSFADE_DATAFLOW_TEMP`: Dataflow temp and staging folder
  [`$CROSSFADE_OUTPUT_DIR/beam-tmp`].
* `CROSSFADE_DATAFLOW_MAX_WORKERS` [`10`], `CROSSFADE_DATAFLOW_MACHINE_TYPE`
  [`n1-standard-4`]: Dataflow autoscaling ceiling and worker type.
* `CROSSFADE_TRAINER_CPU`, `CROSSFADE_TRAINER_MEMORY_GB`: the Trainer pod's CPU and memory
  limits, and the Tuner's when the pipeline tunes [unset: the platform's defaults].
* `CROSSFADE_TRAINER_ACCELERATOR` (e.g. `NVIDIA_TESLA_T4`), `CROSSFADE_TRAINER_ACCELERATOR_COUNT`
  [`1`]: GPUs on the Trainer pod (and the Tuner's), for the `mirrored` distribution strategy
  [unset: none].
* `CROSSFADE_MLMD_HOST` [`mysql.kubeflow.svc.cluster.local`], `CROSSFADE_MLMD_PORT` [`3306`],
  `CROSSFADE_MLMD_DATABASE` [`metadb`], `CROSSFADE_MLMD_USER` [`root`],
  `CROSSFADE_MLMD_PASSWORD` [empty]: ML Metadata on MySQL.

The MLMD defaults are those of a standard Kubeflow Pipelines install, whose backend records
every KFP v2 run in that database itself (the compiled spec carries no connection). The
connection here is for tools outside the KFP backend that read or write the same lineage,
e.g. `crossfade.pipeline.beam_runner.run(config, metadata_connection_config())` from a pod in the
cluster. Vertex AI Pipelines uses Vertex ML Metadata instead; it needs none of these.

`CROSSFADE_DATA_DIR` exists because `create_pipeline` detects the data layout with `os.path`
when it builds the pipeline: point it at a local folder laid out like the bucket's data (e.g.
`crossfade generate --preset tiny --out /tmp/layout`) while `CROSSFADE_DATA_ROOT` is gs://.
"""
import dataclasses
import os
from typing import Dict, Mapping, Optional

from kfp.pipeline_spec import pipeline_spec_pb2
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from crossfade.pipeline import beam_args
from crossfade.pipeline.configs import PipelineConfig

DEFAULT_REGION = "us-central1"
DEFAULT_MLMD_HOST = "mysql.kubeflow.svc.cluster.local"
DEFAULT_MLMD_PORT = 3306
DEFAULT_MLMD_DATABASE = "metadb"
DEFAULT_MLMD_USER = "root"
TRAINER_ID = "CatalogueTrainer"
TUNER_ID = "CatalogueTuner"  # with PipelineConfig.tune: trains the model once per trial
# A step pod's CPU, memory (GB) and accelerators, as the KFP v2 spec carries them.
ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def _env(env: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if env is None else env


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise KeyError(f"set the environment variable {name} (see kubeflow/cluster_config.py)")
    return value


def image(env: Optional[Mapping[str, str]] = None) -> str:
    """The pipeline image every step (and every Dataflow worker) runs."""
    return _required(_env(env), "CROSSFADE_IMAGE")


def output_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """The run's output folder: the pipeline root and the serving base path are under it."""
    env = _env(env)
    if env.get("CROSSFADE_OUTPUT_DIR"):
        return env["CROSSFADE_OUTPUT_DIR"].rstrip("/")
    return _required(env, "CROSSFADE_BUCKET").rstrip("/") + "/crossfade"


def data_root(env: Optional[Mapping[str, str]] = None) -> str:
    """The data folder cluster runs read (the `data_root` runtime parameter's default)."""
    env = _env(env)
    if env.get("CROSSFADE_DATA_ROOT"):
        return env["CROSSFADE_DATA_ROOT"].rstrip("/")
    return _required(env, "CROSSFADE_BUCKET").rstrip("/") + "/data"


def dataflow_beam_args(env: Optional[Mapping[str, str]] = None) -> beam_args.BeamArgs:
    """Beam args for Dataflow, the cluster's data-processing service."""
    env = _env(env)
    optional = {}  # unset: beam_args.dataflow's defaults
    if env.get("CROSSFADE_DATAFLOW_MAX_WORKERS"):
        optional["max_num_workers"] = int(env["CROSSFADE_DATAFLOW_MAX_WORKERS"])
    if env.get("CROSSFADE_DATAFLOW_MACHINE_TYPE"):
        optional["machine_type"] = env["CROSSFADE_DATAFLOW_MACHINE_TYPE"]
    return beam_args.dataflow(
        project=_required(env, "CROSSFADE_GCP_PROJECT"),
        region=env.get("CROSSFADE_GCP_REGION") or DEFAULT_REGION,
        temp_location=env.get("CROSSFADE_DATAFLOW_TEMP") or output_dir(env) + "/beam-tmp",
        image=image(env), **optional)


def cluster_beam_args(env: Optional[Mapping[str, str]] = None) -> beam_args.BeamArgs:
    """Dataflow, or (`CROSSFADE_BEAM_RUNNER=direct`) worker processes inside each step's pod."""
    runner = (_env(env).get("CROSSFADE_BEAM_RUNNER") or "dataflow").lower()
    if runner == "dataflow":
        return dataflow_beam_args(env)
    if runner == "direct":
        return beam_args.multi_processing(int(_env(env).get("CROSSFADE_DIRECT_WORKERS") or 4))
    raise ValueError(f"CROSSFADE_BEAM_RUNNER must be 'dataflow' or 'direct', got {runner!r}")


def step_resources(env: Optional[Mapping[str, str]] = None,
                   tune: bool = False) -> Dict[str, ResourceSpec]:
    """Pod resources by component id: the Trainer's, and with `tune` the same for the Tuner,
    whose trials train as the Trainer does (only these are configurable)."""
    env = _env(env)
    spec = ResourceSpec()
    if env.get("CROSSFADE_TRAINER_CPU"):
        spec.cpu_limit = float(env["CROSSFADE_TRAINER_CPU"])
    if env.get("CROSSFADE_TRAINER_MEMORY_GB"):
        spec.memory_limit = float(env["CROSSFADE_TRAINER_MEMORY_GB"])
    if env.get("CROSSFADE_TRAINER_ACCELERATOR"):
        spec.accelerator.type = env["CROSSFADE_TRAINER_ACCELERATOR"]
        spec.accelerator.count = int(env.get("CROSSFADE_TRAINER_ACCELERATOR_COUNT") or 1)
    if not spec.ByteSize():
        return {}
    return {TRAINER_ID: spec, **({TUNER_ID: spec} if tune else {})}


def metadata_connection_config(env: Optional[Mapping[str, str]] = None
                               ) -> metadata_store_pb2.ConnectionConfig:
    """ML Metadata on the cluster's MySQL (see the module docstring for who uses it)."""
    env = _env(env)
    return metadata.mysql_metadata_connection_config(
        host=env.get("CROSSFADE_MLMD_HOST") or DEFAULT_MLMD_HOST,
        port=int(env.get("CROSSFADE_MLMD_PORT") or DEFAULT_MLMD_PORT),
        database=env.get("CROSSFADE_MLMD_DATABASE") or DEFAULT_MLMD_DATABASE,
        username=env.get("CROSSFADE_MLMD_USER") or DEFAULT_MLMD_USER,
        password=env.get("CROSSFADE_MLMD_PASSWORD", ""))


def pipeline_config(env: Optional[Mapping[str, str]] = None,
                    base: Optional[PipelineConfig] = None) -> PipelineConfig:
    """The PipelineConfig of a cluster run: outputs on object storage, Beam on the cluster.

    `base` carries every other setting (hyperparameters, gate, ...); its paths and Beam args
    are replaced.
    """
    env = _env(env)
    data_dir = env.get("CROSSFADE_DATA_DIR") or data_root(env)
    base = base or PipelineConfig(data_dir=data_dir, output_dir=output_dir(env))
    return dataclasses.replace(base, data_dir=data_dir, output_dir=output_dir(env),
                               beam_pipeline_args=cluster_beam_args(env))
