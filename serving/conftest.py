"""Fixtures for the serving tests: a pipeline-pushed model, and small stand-in models.

`pushed_model` runs the real pipeline once per test session on `tiny` simulator data (about a
minute and a half on 2 cores). `toy_versions` writes small SavedModels with crossfade's
signature names, inputs and outputs (no Transform graph, a 50-track catalogue) for the tests
of version handling, batching and the REST layer, which need many versions quickly.
"""
import dataclasses
import os
import shutil
from typing import Callable

import pytest

from crossfade.serving import model_base_path, toy_model

TOY_TRACKS = [f"spotify:track:toy{i:04d}" for i in range(50)]


@dataclasses.dataclass(frozen=True)
class PushedModel:
    base_path: str  # <output>/serving/crossfade
    version: int
    data_dir: str

    @property
    def path(self) -> str:
        return os.path.join(self.base_path, str(self.version))


@pytest.fixture(scope="session")
def pushed_model(tmp_path_factory) -> PushedModel:
    from crossfade.components.listening_data.simulator import generator
    from crossfade.pipeline import local_runner
    from crossfade.pipeline.configs import PipelineConfig
    root = tmp_path_factory.mktemp("pipeline")
    data_dir = str(root / "data")
    generator.generate("tiny", data_dir, seed=0)
    config = PipelineConfig(data_dir=data_dir, output_dir=str(root / "output")
                            ).with_hyperparameters(batch_size=1024, epochs=3)
    local_runner.run(config)
    versions = model_base_path.served_versions(config.serving_base_path)
    assert versions, "the pipeline pushed no model (not blessed?)"
    return PushedModel(config.serving_base_path, int(versions[-1]), data_dir)


def _save_toy(export_dir: str, seed: int, with_warmup: bool) -> None:
    toy_model.save_toy_model(export_dir, TOY_TRACKS, seed,
                             warmup_users=("u1", "u2") if with_warmup else None)


@pytest.fixture(scope="session")
def toy_template(tmp_path_factory) -> str:
    """One saved toy model (with warmup requests), copied into place by `toy_versions`."""
    path = str(tmp_path_factory.mktemp("toy") / "model")
    _save_toy(path, seed=0, with_warmup=True)
    return path


@pytest.fixture
def toy_versions(tmp_path, toy_template) -> Callable[..., str]:
    """`push(*versions, base=None)` copies the toy model to `<base>/<version>` for each
    version (base defaults to a fresh folder) and returns the base path."""
    default_base = str(tmp_path / "models" / "toy")

    def push(*versions: int, base: str = None) -> str:
        base = base or default_base
        os.makedirs(base, exist_ok=True)
        for version in versions:
            staging = os.path.join(base, f".staging-{version}")
            shutil.copytree(toy_template, staging)
            os.rename(staging, os.path.join(base, str(version)))
        return base

    return push

