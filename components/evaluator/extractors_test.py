"""When the Evaluator keeps TFMA's batches (the metrics' equality: tests/test_end_to_end.py)."""
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors.unbatch_extractor import UNBATCH_EXTRACTOR_STAGE_NAME

from crossfade.components.evaluator import extractors
from crossfade.components.evaluator.eval_config import retrieval_eval_config


def _config() -> tfma.EvalConfig:
    """The Evaluator's config; without thresholds, whose change check needs a baseline model
    (extraction does not depend on them)."""
    config = retrieval_eval_config(lift_floor=1.5, regression_tolerance=0.05, min_eval_plays=1,
                                   min_eval_users=1, diversity_regression_tolerance=0.1,
                                   cold_start_regression_tolerance=0.05,
                                   index_recall_floor=0.95)
    config.metrics_specs[0].ClearField("thresholds")
    return config


def _stages(eval_config: tfma.EvalConfig):
    return [extractor.stage_name
            for extractor in extractors.custom_extractors(None, eval_config, None)]


def test_the_gate_s_config_is_evaluated_in_batches():
    eval_config = _config()
    assert extractors.evaluates_overall_only(eval_config)
    default = [extractor.stage_name
               for extractor in tfma.default_extractors(eval_config=eval_config)]
    assert UNBATCH_EXTRACTOR_STAGE_NAME in default
    assert _stages(eval_config) == [stage for stage in default
                                    if stage != UNBATCH_EXTRACTOR_STAGE_NAME]


def _feature_slice(config):
    config.slicing_specs.add(feature_keys=["platform"])


def _cross_slice(config):
    config.cross_slicing_specs.add().slicing_specs.add(feature_keys=["platform"])


def _query_key(config):
    config.metrics_specs[0].query_key = "user_id"


@pytest.mark.parametrize("change", [_feature_slice, _cross_slice, _query_key])
def test_per_example_slices_and_queries_keep_tfma_s_unbatching(change):
    eval_config = _config()
    change(eval_config)
    assert not extractors.evaluates_overall_only(eval_config)
    assert UNBATCH_EXTRACTOR_STAGE_NAME in _stages(eval_config)
