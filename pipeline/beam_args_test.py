"""Every argument set of `crossfade.pipeline.beam_args` parses into the Beam options it means.

Beam drops a flag it does not know with nothing but a log line ("Discarding unparseable
args"), and its parser accepts any unambiguous prefix of a flag's name; a misspelt flag in one
of these sets would silently run with Beam's default instead (the DirectRunner rather than
Dataflow, parallelism -1, a job server instead of an uber jar). So each set is parsed by Beam's
own `PipelineOptions`, every flag must be one Beam defines under its full name, and the values
are read back through the option views the runners read them from.
"""
import tempfile

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SparkRunnerOptions,
    StandardOptions,
    WorkerOptions,
)

from crossfade.pipeline import beam_args

IMAGE = "img"
PROJECT = "crossfade-test"
REGION = "europe-west1"
TEMP_LOCATION = "gs://b/tmp"
FLINK_MASTER = "flink-jobmanager:8081"
SPARK_MASTER = "spark://spark-master:7077"
SPARK_REST = "http://spark-master:6066"


def _parsed(args):
    """`PipelineOptions` of `args`, once every flag is known to Beam by its full name."""
    options = PipelineOptions(list(args))
    known = options.get_all_options()
    # With retain_unknown_options, Beam adds a key for each flag no options class defines.
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(known)
    assert not unknown, f"flags Beam does not know: {sorted(unknown)}"
    for arg in args:
        assert arg.startswith("--"), arg
        # The option name, not an abbreviation argparse would also accept.
        assert arg[2:].partition("=")[0] in known, f"{arg} is not a full Beam option name"
    return options


@pytest.mark.parametrize("flag", ["--flink_submit_uberjar", "--direct_num_worker=2"])
def test_a_misspelt_or_abbreviated_flag_is_caught(flag):
    with pytest.raises(AssertionError):
        _parsed((beam_args.DIRECT_RUNNER, flag))


def test_in_memory():
    options = _parsed(beam_args.in_memory())
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    direct = options.view_as(DirectOptions)
    assert direct.direct_running_mode == "in_memory"
    assert direct.direct_num_workers == 1


def test_multi_processing():
    options = _parsed(beam_args.multi_processing(2))
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    direct = options.view_as(DirectOptions)
    assert direct.direct_running_mode == "multi_processing"
    assert direct.direct_num_workers == 2


def test_multi_processing_defaults_to_one_worker_per_core():
    options = _parsed(beam_args.multi_processing())
    assert options.view_as(DirectOptions).direct_num_workers == beam_args.local_cores()


@pytest.mark.parametrize("args", [
    beam_args.in_memory(), beam_args.multi_processing(2),
    beam_args.dataflow(PROJECT, REGION, TEMP_LOCATION, IMAGE),
    beam_args.flink(FLINK_MASTER, IMAGE), beam_args.spark(SPARK_MASTER, IMAGE)],
    ids=["in_memory", "multi_processing", "dataflow", "flink", "spark"])
def test_no_set_makes_tfx_build_a_package(args, tmp_path, monkeypatch):
    """TFX's Beam executors would build (and leave in the temp folder) a 49 MB tfx_ephemeral
    sdist on every component run: the local sets say there is nothing to ship, the cluster
    sets ship the pipeline image."""
    from tfx.utils import dependency_utils
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert dependency_utils.make_beam_dependency_flags(list(args)) == list(args)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("workers", [0, -1])
def test_multi_processing_needs_a_worker(workers):
    with pytest.raises(ValueError, match="num_workers"):
        beam_args.multi_processing(workers)


def test_dataflow():
    options = _parsed(beam_args.dataflow(project=PROJECT, region=REGION,
                                         temp_location=TEMP_LOCATION, image=IMAGE))
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (PROJECT, REGION, TEMP_LOCATION)
    workers = options.view_as(WorkerOptions)
    assert workers.max_num_workers == 10
    assert workers.machine_type == "n1-standard-4"
    assert workers.autoscaling_algorithm == "THROUGHPUT_BASED"
    assert workers.sdk_container_image == IMAGE
    assert "use_runner_v2" in options.view_as(DebugOptions).experiments


def test_dataflow_worker_settings():
    options = _parsed(beam_args.dataflow(PROJECT, REGION, TEMP_LOCATION, IMAGE,
                                         max_num_workers=3, machine_type="n1-highmem-4"))
    workers = options.view_as(WorkerOptions)
    assert (workers.max_num_workers, workers.machine_type) == (3, "n1-highmem-4")


def test_flink():
    options = _parsed(beam_args.flink(FLINK_MASTER, IMAGE, parallelism=4))
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    portable = options.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", IMAGE)
    flink = options.view_as(FlinkRunnerOptions)
    assert flink.flink_master == FLINK_MASTER
    assert flink.parallelism == 4
    assert flink.flink_submit_uber_jar is True


def test_spark_with_a_job_server():
    options = _parsed(beam_args.spark(SPARK_MASTER, IMAGE))
    assert options.view_as(StandardOptions).runner == "SparkRunner"
    portable = options.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", IMAGE)
    spark = options.view_as(SparkRunnerOptions)
    assert spark.spark_master_url == SPARK_MASTER
    assert spark.spark_submit_uber_jar is False
    assert spark.spark_rest_url is None


def test_spark_with_an_uber_jar():
    options = _parsed(beam_args.spark(SPARK_MASTER, IMAGE, spark_rest_url=SPARK_REST))
    assert options.view_as(StandardOptions).runner == "SparkRunner"
    portable = options.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", IMAGE)
    spark = options.view_as(SparkRunnerOptions)
    assert spark.spark_master_url == SPARK_MASTER
    assert spark.spark_submit_uber_jar is True
    assert spark.spark_rest_url == SPARK_REST
