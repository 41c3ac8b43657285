"""RetrievalMetrics against hand-computed values, and its gate in the eval config."""
import math

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from crossfade.components.evaluator import eval_config, retrieval_metrics

ILD, NOVELTY = "intra_list_diversity@10", "novelty@10"


def _combiner(model_name=""):
    computations = retrieval_metrics.RetrievalMetrics().computations(model_names=[model_name])
    computation, = [c for c in computations if isinstance(c, metric_types.MetricComputation)]
    return computation.combiner


def _inputs(label_rank, popularity_rank, top, size=10, user=b"u1", **list_outputs):
    """One play (or a batch); `list_outputs`: intra_list_diversity and novelty, which models
    exported before those outputs lack."""
    return metric_types.StandardMetricInputs(prediction={
        "label_rank": np.array(label_rank), "popularity_rank": np.array(popularity_rank),
        "top_indices": np.array(top), "catalogue_size": np.array(size),
        **{name: np.array(values, dtype=np.float32) for name, values in list_outputs.items()}},
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


def test_rank_metrics_are_the_combiners_over_the_same_plays():
    """What the Tuner's trials score by (components/tuner/held_out.py)."""
    ranks = [0, 9, 49, 10, 100, 250]
    combiner = _combiner()
    accumulator = combiner.create_accumulator()
    for rank in ranks:
        accumulator = combiner.add_input(accumulator, _inputs(rank, 0, [0] * 10))
    combined = _values(combiner.extract_output(accumulator))
    metrics = retrieval_metrics.rank_metrics(np.array(ranks))
    assert set(metrics) == {"recall@10", "recall@50", "recall@100", "ndcg@10", "eval_plays"}
    for name, value in metrics.items():
        assert value == pytest.approx(combined[name]), name
    assert metrics[eval_config.GATED_METRIC] == pytest.approx(4 / 6)
    assert math.isnan(retrieval_metrics.rank_metrics(np.array([], np.int32))["recall@50"])


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


def test_cold_and_warm_plays_are_measured_apart():
    combiner = _combiner()
    accumulators = []
    # Cold plays (the track never played in training) at ranks 3 and 60; warm at 0, 20, 200;
    # a play of a track outside the catalogue (-1, never a hit) in neither segment.
    for ranks, train_plays in (([3, 0, 500], [0, 5, -1]), ([60, 20, 200], [0, 1, 9])):
        play = _inputs(ranks, [99] * len(ranks), [list(range(10))] * len(ranks))
        play.prediction["label_train_plays"] = np.array(train_plays)
        accumulators.append(combiner.add_input(combiner.create_accumulator(), play))
    values = _values(combiner.extract_output(combiner.merge_accumulators(accumulators)))
    assert (values["cold_eval_plays"], values["warm_eval_plays"]) == (2, 3)
    assert values["cold_recall@10"] == pytest.approx(1 / 2)
    assert values["cold_recall@100"] == pytest.approx(2 / 2)
    assert values["warm_recall@50"] == pytest.approx(2 / 3)
    assert values["cold_ndcg@10"] == pytest.approx(1 / np.log2(5) / 2)
    assert values["warm_ndcg@10"] == pytest.approx(1 / 3)
    assert values["recall@50"] == pytest.approx(3 / 6)  # the overall figure has all plays


def test_a_model_without_train_plays_has_unknown_cold_metrics():
    combiner = _combiner()
    values = _values(combiner.extract_output(combiner.add_input(
        combiner.create_accumulator(), _inputs(0, 0, list(range(10))))))
    assert values["cold_eval_plays"] == 0 and math.isnan(values["cold_recall@50"])
    assert values["warm_eval_plays"] == 0 and math.isnan(values["warm_ndcg@10"])
    assert values["recall@10"] == 1.0


@pytest.mark.parametrize("candidate, candidate_plays, baseline, baseline_plays, change", [
    (0.30, 400, 0.25, 300, 0.05),
    (0.20, 400, 0.30, 300, -0.10),
    (0.20, 400, None, 0, 0.0),           # no blessed model yet
    (0.20, 99, 0.30, 300, 0.0),          # too few cold plays to tell
    (0.20, 400, 0.30, 50, 0.0),
    (0.20, 400, math.nan, 300, 0.0),     # the baseline predates the output
])
def test_cold_recall_change(candidate, candidate_plays, baseline, baseline_plays, change):
    assert retrieval_metrics.cold_recall_change(
        candidate, candidate_plays, baseline, baseline_plays) == pytest.approx(change)


def _config(has_baseline=True, diversity_tolerance=0.05, cold_tolerance=0.05, **gate):
    gate = {"lift_floor": 1.2, "regression_tolerance": 0.01, "min_eval_plays": 100,
            "min_eval_users": 20, **gate}
    config = eval_config.retrieval_eval_config(diversity_regression_tolerance=diversity_tolerance,
                                               cold_start_regression_tolerance=cold_tolerance,
                                               index_recall_floor=0.95, **gate)
    # As TFX's Evaluator does: rubber_stamp drops change thresholds before the first blessing.
    return tfma.utils.config_util.update_eval_config_with_defaults(
        config, has_baseline=has_baseline, rubber_stamp=True)


def test_gate_thresholds_reach_the_computed_keys():
    config = _config()
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, config)
    computed = {key for computation in metric_specs.to_computations(config.metrics_specs, config)
                for key in computation.keys}
    gated = [key for key in thresholds if not key.is_diff]
    assert {key.name for key in gated} == {eval_config.LIFT_METRIC,
                                           retrieval_metrics.EVAL_PLAYS,
                                           retrieval_metrics.EVAL_USERS,
                                           eval_config.DIVERSITY_GATED_METRIC,
                                           eval_config.COLD_GATED_METRIC,
                                           eval_config.INDEX_GATED_METRIC}
    bounds = {key.name: " ".join(str(entries).split()) for key, entries in thresholds.items()
              if not key.is_diff}
    assert "lower_bound { value: 100.0 }" in bounds[retrieval_metrics.EVAL_PLAYS]
    assert "lower_bound { value: 20.0 }" in bounds[retrieval_metrics.EVAL_USERS]
    assert "lower_bound { value: -0.05 }" in bounds[eval_config.DIVERSITY_GATED_METRIC]
    assert "lower_bound { value: -0.05 }" in bounds[eval_config.COLD_GATED_METRIC]
    assert "lower_bound { value: 0.95 }" in bounds[eval_config.INDEX_GATED_METRIC]
    # TFMA never checks the baseline's own thresholds; every candidate one must be computed.
    assert all(key in computed for key in gated if key.model_name != "baseline")
    assert {key.name for key in thresholds if key.is_diff} == {eval_config.GATED_METRIC}


# --- intra-list diversity and novelty ---------------------------------------------------------

def test_list_metrics_are_means_over_measured_lists_across_accumulators():
    combiner = _combiner()
    first = combiner.add_input(combiner.create_accumulator(),
                               _inputs([0, 1], [0, 0], [[0] * 10, [1] * 10],
                                       intra_list_diversity=[0.5, np.nan], novelty=[3.0, 5.0]))
    second = combiner.add_input(combiner.create_accumulator(),
                                _inputs(2, 0, [2] * 10, intra_list_diversity=0.2, novelty=7.0))
    values = _values(combiner.extract_output(combiner.merge_accumulators([first, second])))
    assert values[ILD] == pytest.approx((0.5 + 0.2) / 2)  # the NaN list has no pair to measure
    assert values[NOVELTY] == pytest.approx((3.0 + 5.0 + 7.0) / 3)
    assert values["eval_plays"] == 3


def test_a_model_without_list_outputs_reports_them_as_unknown():
    combiner = _combiner()
    accumulator = combiner.add_input(combiner.create_accumulator(), _inputs(0, 0, [0] * 10))
    accumulator = combiner.merge_accumulators([accumulator, combiner.create_accumulator()])
    values = _values(combiner.extract_output(accumulator))
    assert math.isnan(values[ILD]) and math.isnan(values[NOVELTY])
    assert math.isnan(values["index_recall@100"])
    assert values["recall@10"] == 1.0 and values["eval_plays"] == 1


def test_index_recall_is_the_mean_over_plays_across_accumulators():
    combiner = _combiner()
    first = combiner.add_input(combiner.create_accumulator(),
                               _inputs([0, 1], [0, 0], [[0] * 10, [1] * 10],
                                       index_recall=[1.0, 0.9]))
    second = combiner.add_input(combiner.create_accumulator(),
                                _inputs(2, 0, [2] * 10, index_recall=0.5))
    values = _values(combiner.extract_output(combiner.merge_accumulators([first, second])))
    assert values["index_recall@100"] == pytest.approx((1.0 + 0.9 + 0.5) / 3)


def test_lists_without_any_content_pair_leave_diversity_unknown():
    combiner = _combiner()
    accumulator = combiner.add_input(combiner.create_accumulator(),
                                     _inputs(0, 0, [0] * 10, intra_list_diversity=np.nan,
                                             novelty=1.0))
    values = _values(combiner.extract_output(accumulator))
    assert math.isnan(values[ILD]) and values[NOVELTY] == 1.0


@pytest.mark.parametrize("candidate, baseline, change", [
    (0.45, 0.5, -0.1),
    (0.6, 0.5, 0.2),
    (0.5, None, 0.0),              # no blessed model yet
    (0.5, math.nan, 0.0),          # the blessed model predates the output
    (math.nan, math.nan, 0.0),     # neither catalogue has content
    (math.nan, 0.5, -1.0),         # the candidate's diversity is gone
    (0.0, 0.0, 0.0),
    (0.3, 0.0, math.inf),
])
def test_diversity_change(candidate, baseline, change):
    assert retrieval_metrics.diversity_change(candidate, baseline) == pytest.approx(change)


# --- the blessing gate, as TFMA's evaluator applies it to one slice ---------------------------

def _play(candidate, baseline, user):
    """One eval play scored by both models: a hit for each, missed by most-popular. The
    candidate reports a brute-force index recall (1) unless `candidate` says otherwise."""
    def outputs(list_outputs):
        return {"label_rank": np.array([0]), "popularity_rank": np.array([99]),
                "top_indices": np.array([list(range(10))]), "catalogue_size": np.array([10]),
                **{name: np.array([value], np.float32) for name, value in list_outputs.items()}}
    prediction = {"candidate": outputs({"index_recall": 1.0, **candidate})}
    if baseline is not None:
        prediction["baseline"] = outputs(baseline)
    return metric_types.StandardMetricInputs(prediction=prediction,
                                             features={"user_id": np.array([user])})


def _validate(config, plays):
    """Combine, derive, diff (candidate minus baseline where both are reported) and validate,
    in the order of TFMA's MetricsPlotsAndValidationsEvaluator."""
    computations = metric_specs.to_computations(config.metrics_specs, config)
    metrics = {}
    for computation in computations:
        if isinstance(computation, metric_types.MetricComputation):
            combiner = computation.combiner
            accumulator = combiner.create_accumulator()
            for play in plays:
                accumulator = combiner.add_input(accumulator, play)
            metrics.update(combiner.extract_output(accumulator))
    for computation in computations:
        if isinstance(computation, metric_types.DerivedMetricComputation):
            metrics.update(computation.result(metrics))
    for key, value in list(metrics.items()):
        baseline_key = key.make_baseline_key("baseline")
        if key.model_name == "candidate" and baseline_key in metrics:
            metrics[key.make_diff_key()] = value - metrics[baseline_key]
    result = metrics_validator.validate_metrics(((), metrics), config)
    failed = {failure.metric_key.name for per_slice in result.metric_validations_per_slice
              for failure in per_slice.failures}
    return metrics, failed


def _plays(candidate, baseline):
    return [_play(candidate, baseline, user) for user in (b"a", b"b")]


SMALL = {"min_eval_plays": 2, "min_eval_users": 2}


def test_a_blessed_model_without_the_diversity_output_does_not_block_blessing():
    metrics, failed = _validate(_config(**SMALL), _plays(
        {"intra_list_diversity": 0.5, "novelty": 3.0}, {}))
    assert failed == set()
    change = metric_types.MetricKey(eval_config.DIVERSITY_GATED_METRIC, model_name="candidate",
                                    example_weighted=None)
    assert metrics[change] == 0.0


@pytest.mark.parametrize("candidate, blocked", [(0.48, False), (0.45, True), (math.nan, True)])
def test_a_diversity_regression_beyond_the_tolerance_blocks_blessing(candidate, blocked):
    _, failed = _validate(_config(**SMALL), _plays(
        {"intra_list_diversity": candidate}, {"intra_list_diversity": 0.5}))
    assert failed == ({eval_config.DIVERSITY_GATED_METRIC} if blocked else set())


@pytest.mark.parametrize("recall, blocked", [(0.96, False), (0.94, True), (math.nan, True)])
def test_an_index_below_the_recall_floor_blocks_blessing(recall, blocked):
    # NaN: a candidate that does not report its index's recall is not blessed on trust.
    _, failed = _validate(_config(**SMALL), _plays({"index_recall": recall}, {}))
    assert failed == ({eval_config.INDEX_GATED_METRIC} if blocked else set())


def test_the_tolerance_is_configurable():
    plays = _plays({"intra_list_diversity": 0.45}, {"intra_list_diversity": 0.5})
    assert _validate(_config(diversity_tolerance=0.2, **SMALL), plays)[1] == set()
    assert _validate(_config(diversity_tolerance=0.0, **SMALL), plays)[1] == {
        eval_config.DIVERSITY_GATED_METRIC}


def test_the_first_model_is_gated_without_a_baseline():
    config = _config(has_baseline=False, **SMALL)
    plays = [metric_types.StandardMetricInputs(prediction=_play(
        {"intra_list_diversity": 0.5}, None, user).prediction["candidate"],
        features={"user_id": np.array([user])}) for user in (b"a", b"b")]
    assert _validate(config, plays)[1] == set()
    assert _validate(_config(has_baseline=False, min_eval_plays=3, min_eval_users=2),
                     plays)[1] == {retrieval_metrics.EVAL_PLAYS}


def test_why_the_gate_is_not_a_tfma_change_threshold():
    """TFMA fails a change threshold for good when the baseline has no value: the reason for
    `diversity_change` (if TFMA stops doing so, the gate could be a change threshold)."""
    config = _config(**SMALL)
    config.metrics_specs[0].thresholds[ILD].CopyFrom(tfma.MetricThreshold(
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, relative={"value": -0.05})))
    _, failed = _validate(config, _plays({"intra_list_diversity": 0.5}, {}))
    assert failed == {ILD}


def _cold_plays(candidate_rank, baseline_rank, count):
    """`count` cold plays (never played in training by either model) by distinct users."""
    def outputs(rank):
        return {"label_rank": np.array([rank]), "popularity_rank": np.array([99]),
                "top_indices": np.array([list(range(10))]), "catalogue_size": np.array([10]),
                "label_train_plays": np.array([0])}
    return [metric_types.StandardMetricInputs(
        prediction={"candidate": outputs(candidate_rank), "baseline": outputs(baseline_rank)},
        features={"user_id": np.array([f"u{i}".encode()])}) for i in range(count)]


def test_a_cold_start_regression_blocks_blessing_once_there_are_enough_cold_plays():
    # Every cold play: the baseline ranks it first, the candidate 60th (a miss at 50).
    enough = retrieval_metrics.MIN_COLD_PLAYS
    _, failed = _validate(_config(**SMALL), _cold_plays(60, 0, enough))
    # (Recall@50 and its lift fail too: every play here is cold.)
    assert eval_config.COLD_GATED_METRIC in failed
    _, failed = _validate(_config(**SMALL), _cold_plays(60, 0, enough - 1))
    assert eval_config.COLD_GATED_METRIC not in failed
    # Recall 0.1 against 1.0: a drop of 0.9, inside a tolerance of 0.95.
    plays = _cold_plays(60, 0, enough - 10) + _cold_plays(0, 0, 10)
    _, failed = _validate(_config(cold_tolerance=0.95, **SMALL), plays)
    assert eval_config.COLD_GATED_METRIC not in failed
    _, failed = _validate(_config(cold_tolerance=0.85, **SMALL), plays)
    assert eval_config.COLD_GATED_METRIC in failed
