"""RetrievalMetrics against hand-computed values, and its gate in the eval config."""
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from crossfade.components.evaluator import eval_config, retrieval_metrics


def _combiner():
    computation, = retrieval_metrics.RetrievalMetrics().computations(model_names=[""])
    return computation.combiner


def _inputs(label_rank, popularity_rank, top, size=10, user=b"u1"):
    return metric_types.StandardMetricInputs(prediction={
        "label_rank": np.array(label_rank), "popularity_rank": np.array(popularity_rank),
        "top_indices": np.array(top), "catalogue_size": np.array(size)},
        features={"user_id": np.array([user], dtype=object)})


def _values(result):
    return {key.name: value for key, value in result.items()}


def test_metrics_match_hand_computed_values():
    combiner = _combiner()
    plays = [
        _inputs(0, 0, list(range(10))),           # hit at rank 0
        _inputs(9, 60, [9, 8] + [0] * 8),         # rank 9: in top 10
        _inputs(49, 10, [1] * 10),                # rank 49: in top 50 only
        _inputs(10, 70, [2] * 10),                # rank 10: misses top 10
    ]
    first = combiner.create_accumulator()
    for play in plays[:2]:
        first = combiner.add_input(first, play)
    second = combiner.create_accumulator()
    for play in plays[2:]:
        second = combiner.add_input(second, play)
    values = _values(combiner.extract_output(combiner.merge_accumulators([first, second])))
    assert values["recall@10"] == pytest.approx(2 / 4)
    assert values["recall@50"] == pytest.approx(4 / 4)
    assert values["recall@100"] == pytest.approx(1.0)
    assert values["ndcg@10"] == pytest.approx((1 / np.log2(2) + 1 / np.log2(11)) / 4)
    assert values["coverage@10"] == pytest.approx(1.0)  # rows 0..9 all recommended
    assert values["popularity_recall@50"] == pytest.approx(2 / 4)
    assert values["recall@50_lift"] == pytest.approx(2.0)
    assert values["eval_plays"] == 4
    assert values["eval_users"] == 1


def test_eval_users_are_distinct_users_across_accumulators():
    combiner = _combiner()
    first = combiner.create_accumulator()
    for user in (b"a", b"b", b"a"):
        first = combiner.add_input(first, _inputs(0, 0, [0] * 10, user=user))
    second = combiner.add_input(combiner.create_accumulator(),
                                _inputs(0, 0, [0] * 10, user=np.array([b"b"])))
    values = _values(combiner.extract_output(combiner.merge_accumulators([first, second])))
    assert values["eval_users"] == 2 and values["eval_plays"] == 4


def test_lift_without_popularity_hits():
    combiner = _combiner()
    accumulator = combiner.add_input(combiner.create_accumulator(), _inputs(3, 99, [0] * 10))
    assert _values(combiner.extract_output(accumulator))["recall@50_lift"] == float("inf")


def test_wrong_signature_outputs_are_reported():
    combiner = _combiner()
    with pytest.raises(ValueError, match="evaluate_examples"):
        combiner.add_input(combiner.create_accumulator(),
                           metric_types.StandardMetricInputs(prediction=np.array([0.3])))


def test_gate_thresholds_reach_the_computed_keys():
    config = eval_config.retrieval_eval_config(lift_floor=1.2, regression_tolerance=0.01,
                                               min_eval_plays=100, min_eval_users=20)
    config = tfma.utils.config_util.update_eval_config_with_defaults(config, has_baseline=True)
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, config)
    computed = {key for computation in metric_specs.to_computations(config.metrics_specs, config)
                for key in computation.keys}
    gated = [key for key in thresholds if not key.is_diff]
    assert {key.name for key in gated} == {eval_config.LIFT_METRIC,
                                           retrieval_metrics.EVAL_PLAYS,
                                           retrieval_metrics.EVAL_USERS}
    bounds = {key.name: " ".join(str(entries).split()) for key, entries in thresholds.items()
              if not key.is_diff}
    assert "lower_bound { value: 100.0 }" in bounds[retrieval_metrics.EVAL_PLAYS]
    assert "lower_bound { value: 20.0 }" in bounds[retrieval_metrics.EVAL_USERS]
    assert all(key in computed for key in gated)
    assert {key.name for key in thresholds if key.is_diff} == {eval_config.GATED_METRIC}
