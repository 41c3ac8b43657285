"""PipelineConfig's checks of its blessing settings."""
import pytest

from crossfade.pipeline.configs import PipelineConfig


@pytest.mark.parametrize("tolerance", [-0.01, 1.5])
def test_diversity_regression_tolerance_is_a_share(tolerance):
    with pytest.raises(ValueError, match="diversity_regression_tolerance"):
        PipelineConfig(data_dir="", output_dir="", diversity_regression_tolerance=tolerance)


def test_diversity_regression_tolerance_bounds_are_allowed():
    for tolerance in (0.0, 1.0):  # 0: no loss allowed; 1: the check is off
        assert PipelineConfig(data_dir="", output_dir="",
                              diversity_regression_tolerance=tolerance)
    assert 0.0 < PipelineConfig(data_dir="", output_dir="").diversity_regression_tolerance < 1.0
