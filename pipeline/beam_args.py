"""Beam pipeline argument sets for the data components (ExampleGen, Transform, Evaluator).

Every Beam-based TFX component runs its own Beam pipeline with the `beam_pipeline_args` of the
`PipelineConfig`. The sets here are starting points:

* `multi_processing()` (the `crossfade run --runner beam` default): the DirectRunner on this
  machine with one worker process per core, for data that no longer fits one process's time.
* `in_memory()`: the DirectRunner in this process, lowest start-up cost, for small data (what
  `crossfade.pipeline.configs.LOCAL_BEAM_ARGS` uses).
* `dataflow(...)`, `flink(...)`, `spark(...)`: documented, ready-to-edit sets for clusters.
  Their code must reach the workers: the pipeline image (kubeflow/Dockerfile) is built on the
  TFX image, which carries the Beam SDK worker boot (`/opt/apache/beam/boot`) as entry point,
  so it doubles as the SDK harness container for every portable runner.

Pass a set with `dataclasses.replace(config, beam_pipeline_args=beam_args.dataflow(...))`.
"""
from typing import Optional, Tuple

from crossfade.components.cpu import local_cores

BeamArgs = Tuple[str, ...]

DIRECT_RUNNER = "--runner=DirectRunner"
# Every Beam-based TFX executor packages the installed TFX into a `tfx_ephemeral` sdist (about
# 49 MB, left in the temp folder, a few seconds each) unless the args already name a way to
# ship dependencies (tfx/utils/dependency_utils.py: --extra_packages, --setup_file,
# --requirements_file, --sdk_container_image). The DirectRunner's workers run in this very
# environment (in this process, or subprocesses of this interpreter) and need no package, and
# the DirectRunner never reads this flag: it only tells TFX not to build one.
DIRECT_RUNNER_NEEDS_NO_PACKAGE = "--sdk_container_image=none:direct-runner-uses-this-environment"


def multi_processing(num_workers: Optional[int] = None) -> BeamArgs:
    """DirectRunner with worker subprocesses: `num_workers` (default one per core).

    Each worker is a separate Python process, so Python-heavy steps (CSV parsing, example
    encoding, TFMA) run in parallel instead of sharing one GIL. Every worker imports
    TensorFlow, so each component pays a few seconds of start-up per worker.
    """
    workers = num_workers if num_workers is not None else local_cores()
    if workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {workers}")
    return (DIRECT_RUNNER, "--direct_running_mode=multi_processing",
            f"--direct_num_workers={workers}", DIRECT_RUNNER_NEEDS_NO_PACKAGE)


def in_memory() -> BeamArgs:
    """DirectRunner in this process, one worker: the cheapest start-up, for small data."""
    return (DIRECT_RUNNER, "--direct_running_mode=in_memory", "--direct_num_workers=1",
            DIRECT_RUNNER_NEEDS_NO_PACKAGE)


def dataflow(project: str, region: str, temp_location: str, image: str,
             max_num_workers: int = 10, machine_type: str = "n1-standard-4") -> BeamArgs:
    """Google Cloud Dataflow, Runner v2 with the pipeline image as SDK container.

    Args:
      project: GCP project that runs (and pays for) the jobs.
      region: Dataflow region, e.g. "europe-west1"; keep it beside the pipeline root bucket.
      temp_location: gs:// folder for staging and temporary files.
      image: the pipeline image (kubeflow/Dockerfile) pushed to a registry the workers can
        pull from: workers import crossfade's executors and Beam functions from it.
      max_num_workers: autoscaling ceiling.
      machine_type: worker machine type; ExampleGen holds one user shard of plays in memory
        (see components/example_gen/listening_example_gen.py), so keep >= 15 GB per worker
        for very large logs (e.g. "n1-highmem-4").
    """
    return (
        "--runner=DataflowRunner",
        f"--project={project}",
        f"--region={region}",
        f"--temp_location={temp_location}",
        # Custom SDK containers need Runner v2.
        "--experiments=use_runner_v2",
        # The image already holds crossfade and every dependency: nothing is staged.
        f"--sdk_container_image={image}",
        f"--max_num_workers={max_num_workers}",
        "--autoscaling_algorithm=THROUGHPUT_BASED",
        f"--machine_type={machine_type}",
    )


def flink(flink_master: str, image: str, parallelism: int = 8) -> BeamArgs:
    """Apache Flink through Beam's portable Flink runner (job server started by Beam).

    Args:
      flink_master: the Flink JobManager's REST address, e.g. "flink-jobmanager:8081".
      image: the pipeline image, run by each TaskManager as the Python SDK harness (the
        TaskManagers need Docker, or use "--environment_type=EXTERNAL" with a worker pool
        sidecar: "--environment_config=localhost:50000").
      parallelism: default parallelism of each Beam stage.
    """
    return (
        "--runner=FlinkRunner",
        f"--flink_master={flink_master}",
        f"--parallelism={parallelism}",
        "--environment_type=DOCKER",
        f"--environment_config={image}",
        # The same image by its newer name: tells TFX the code ships in it (no package build).
        f"--sdk_container_image={image}",
        # Submit one self-contained jar instead of keeping a job server running.
        "--flink_submit_uber_jar",
    )


def spark(spark_master_url: str, image: str, spark_rest_url: Optional[str] = None) -> BeamArgs:
    """Apache Spark through Beam's portable Spark runner.

    Args:
      spark_master_url: e.g. "spark://spark-master:7077".
      image: the pipeline image, run by each executor as the Python SDK harness (executors
        need Docker, or use "--environment_type=EXTERNAL" with a worker pool sidecar).
      spark_rest_url: the master's REST endpoint, e.g. "http://spark-master:6066". Given, Beam
        submits one self-contained jar there; without it, Beam starts a Spark job server.
    """
    args = (
        "--runner=SparkRunner",
        f"--spark_master_url={spark_master_url}",
        "--environment_type=DOCKER",
        f"--environment_config={image}",
        f"--sdk_container_image={image}",  # as in flink(): no TFX package build
    )
    if spark_rest_url:
        args += ("--spark_submit_uber_jar", f"--spark_rest_url={spark_rest_url}")
    return args
