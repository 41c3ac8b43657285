"""Runs the pipeline on this machine: LocalDagRunner, ML Metadata in SQLite, caching on."""
from tfx import v1 as tfx

from crossfade.pipeline import run_lock
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    """Runs every component of the pipeline for `config` (cached steps are reused).

    Raises `run_lock.RunInProgressError` if another run is using `config.output_dir`.
    """
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        config.metadata_path)
    with run_lock.hold(config.output_dir):
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata))
