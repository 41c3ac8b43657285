"""PipelineConfig's checks of its blessing settings."""
import pytest

from crossfade.pipeline.configs import PipelineConfig

TOLERANCES = ("diversity_regression_tolerance", "cold_start_regression_tolerance")


@pytest.mark.parametrize("name", TOLERANCES)
@pytest.mark.parametrize("tolerance", [-0.01, 1.5])
def test_regression_tolerances_are_shares(name, tolerance):
    with pytest.raises(ValueError, match=name):
        PipelineConfig(data_dir="", output_dir="", **{name: tolerance})


@pytest.mark.parametrize("name", TOLERANCES)
def test_regression_tolerance_bounds_are_allowed(name):
    for tolerance in (0.0, 1.0):  # 0: no loss allowed; 1: the check is off
        assert PipelineConfig(data_dir="", output_dir="", **{name: tolerance})
    assert 0.0 < getattr(PipelineConfig(data_dir="", output_dir=""), name) < 1.0
