"""Runs the pipeline on this machine: LocalDagRunner, ML Metadata in SQLite, caching on."""
from tfx import v1 as tfx

from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    """Runs every component of the pipeline for `config` (cached steps are reused)."""
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        config.metadata_path)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata))
