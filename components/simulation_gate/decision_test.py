"""Every branch of the simulation gate's verdict."""
import pytest

from crossfade.components.simulation_gate import decision


def test_an_evaluator_rejection_is_final() -> None:
    v = decision.verdict(False, True, 0.02, 0.9, 0.1)
    assert not v.blessed and v.reason == decision.EVALUATOR_REJECTED


def test_imported_data_passes_the_evaluators_blessing_through() -> None:
    v = decision.verdict(True, False, 0.02)
    assert v.blessed and v.reason == decision.NO_TRUTH and v.candidate_stream_rate is None


def test_the_first_model_is_blessed_without_a_baseline() -> None:
    v = decision.verdict(True, True, 0.02, 0.4, None)
    assert v.blessed and v.reason == decision.NO_BASELINE and v.candidate_stream_rate == 0.4


@pytest.mark.parametrize("candidate,blessed", [(0.50, True), (0.49, True), (0.4899, False)])
def test_regression_beyond_the_margin_is_refused(candidate, blessed) -> None:
    v = decision.verdict(True, True, 0.02, candidate, 0.5)
    assert v.blessed is blessed
    assert v.baseline_stream_rate == 0.5
    assert ("regression" in v.reason) is not blessed


def test_a_simulated_verdict_needs_the_candidate() -> None:
    with pytest.raises(ValueError, match="candidate"):
        decision.verdict(True, True, 0.02)
