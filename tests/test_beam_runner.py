"""The whole pipeline on `tiny` data with BeamDagRunner and the multi_processing DirectRunner.

One BeamDagRunner run (2 worker processes per Beam component) is compared with one
LocalDagRunner run (in-memory DirectRunner) on the same data, each in a fresh output folder,
so neither has a blessed baseline. About 4 minutes on 2 cores (local ~1.5, Beam ~2.5: every
Beam component starts 2 worker processes that each import TensorFlow).

Tolerances: the data components must agree exactly (same eval plays, same most-popular
recall, which depend on no training); the model's metrics within RETRIEVAL_TOLERANCE
(absolute), because training is not bit-deterministic across processes (thread scheduling
and the order Beam writes the examples in change float summation order). Observed difference
on recall@50: about 0.01.
"""
import dataclasses
import os

import pytest

from crossfade.components.listening_data.simulator import generator
from crossfade.pipeline import beam_args, beam_runner, local_runner, run_summary
from crossfade.pipeline.configs import PipelineConfig
from crossfade.serving import model_base_path

TINY_TRAINING = {"batch_size": 1024, "epochs": 10}
BEAM_WORKERS = 2
RETRIEVAL_TOLERANCE = 0.03  # recall@K, NDCG@10
COVERAGE_TOLERANCE = 0.05  # catalogue coverage moves more: a few tail tracks flip in or out
RETRIEVAL_METRICS = ("recall@10", "recall@50", "recall@100", "ndcg@10")
COVERAGE_METRICS = ("coverage@10", "coverage@100")
DATA_METRICS = ("eval_plays", "popularity_recall@50")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("beam") / "data")
    generator.generate("tiny", data_dir, seed=0)
    return data_dir


def _config(data_dir: str, output_dir: str) -> PipelineConfig:
    return PipelineConfig(data_dir=data_dir, output_dir=output_dir
                          ).with_hyperparameters(**TINY_TRAINING)


@pytest.fixture(scope="module")
def local_run(tiny_data, tmp_path_factory):
    config = _config(tiny_data, str(tmp_path_factory.mktemp("local") / "output"))
    local_runner.run(config)
    return config, run_summary.latest_run(config)


@pytest.fixture(scope="module")
def beam_run(tiny_data, tmp_path_factory):
    config = dataclasses.replace(
        _config(tiny_data, str(tmp_path_factory.mktemp("beam") / "output")),
        beam_pipeline_args=beam_args.multi_processing(BEAM_WORKERS))
    beam_runner.run(config)
    return config, run_summary.latest_run(config)


def test_beam_args_select_the_multi_processing_direct_runner(beam_run):
    config, _ = beam_run
    assert "--direct_running_mode=multi_processing" in config.beam_pipeline_args
    assert f"--direct_num_workers={BEAM_WORKERS}" in config.beam_pipeline_args


def test_every_component_completes_and_a_blessed_model_is_pushed(beam_run):
    config, summary = beam_run
    assert set(summary.component_states.values()) == {"COMPLETE"}, summary.component_states
    assert summary.blessed and summary.pushed
    assert model_base_path.served_versions(config.serving_base_path) == [summary.pushed_version]
    version_dir = os.path.join(config.serving_base_path, summary.pushed_version)
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))


def test_data_components_agree_exactly_with_the_local_run(beam_run, local_run):
    _, beam = beam_run
    _, local = local_run
    assert set(beam.component_states) == set(local.component_states)
    for name in DATA_METRICS:
        assert beam.metrics[name] == pytest.approx(local.metrics[name], rel=1e-9), name
    # Stream qualification's counts (a pure Beam component), where the summary reports them.
    assert getattr(beam, "stream_counts", None) == getattr(local, "stream_counts", None)


def test_model_metrics_match_the_local_run_within_tolerance(beam_run, local_run):
    _, beam = beam_run
    _, local = local_run
    assert local.blessed and local.pushed
    for name in RETRIEVAL_METRICS:
        assert beam.metrics[name] == pytest.approx(local.metrics[name],
                                                   abs=RETRIEVAL_TOLERANCE), name
    for name in COVERAGE_METRICS:
        assert beam.metrics[name] == pytest.approx(local.metrics[name],
                                                   abs=COVERAGE_TOLERANCE), name
