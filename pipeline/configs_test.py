"""PipelineConfig's checks of its blessing and Tuner settings."""
import pytest

from crossfade.components.trainer import run_config
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


@pytest.mark.parametrize("settings, field", [
    ({"tune": "yes"}, "tune"),
    ({"tune": True, "tune_trials": 0}, "tune_trials"),
    ({"tune": True, "tune_trials": 2.0}, "tune_trials"),
    ({"tune": True, "tune_trials": True}, "tune_trials"),
])
def test_tuner_settings_are_checked(settings, field):
    with pytest.raises(ValueError, match=field):
        PipelineConfig(data_dir="", output_dir="", **settings)


def test_the_tuner_gets_the_trainers_settings_and_its_trials():
    config = PipelineConfig(data_dir="", output_dir="", tune=True, tune_trials=3)
    assert config.tuner_custom_config() == {**config.trainer_custom_config(),
                                            run_config.TUNE_TRIALS_KEY: 3}
    assert PipelineConfig(data_dir="", output_dir="").tune is False
