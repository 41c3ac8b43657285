"""Runs the pipeline with TFX's BeamDagRunner, the Beam args of its config and ML Metadata.

The orchestration itself is a small Beam pipeline in this process (one DoFn per component,
ordered by signals from its upstream components); each Beam-based component then runs its
own Beam pipeline with `config.beam_pipeline_args`:
`crossfade.pipeline.beam_args.multi_processing()` spreads the data components over this
machine's cores, `crossfade.pipeline.beam_args.dataflow(...)`
over a cluster. Components write where `local_runner` writes, so `crossfade status` and the
serving base path work the same after either runner.
"""
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from crossfade.pipeline import run_lock
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import create_pipeline


def run(config: PipelineConfig,
        metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None
        ) -> None:
    """Runs every component of the pipeline for `config` (cached steps are reused).

    ML Metadata is the SQLite file at `config.metadata_path` unless
    `metadata_connection_config` names another store, e.g. the cluster's MySQL
    (`crossfade.kubeflow.cluster_config.metadata_connection_config()`).
    """
    connection = (metadata_connection_config
                  or metadata.sqlite_metadata_connection_config(config.metadata_path))
    if "://" in config.output_dir:  # object storage: the orchestrator tracks the run
        BeamDagRunner().run(create_pipeline(config, connection))
        return
    with run_lock.hold(config.output_dir):
        BeamDagRunner().run(create_pipeline(config, connection))
