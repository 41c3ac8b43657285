"""The Evaluator's TFMA configuration: retrieval metrics and the blessing gate.

A model is blessed when all of these hold on the eval (later-span) split:

* floor: its Recall@50 is at least `lift_floor` times a most-popular ranking's Recall@50 on the
  same plays (`recall@50_lift`), a bar that keeps its meaning on any dataset;
* no regression: its Recall@50 is not below the latest blessed model's by more than
  `regression_tolerance` (relative). TFMA drops this check when no model is blessed yet;
* enough evidence: at least `min_eval_plays` eval plays (`eval_plays`) by at least
  `min_eval_users` distinct users (`eval_users`), so a tiny eval split never blesses;
* no diversity regression: its intra-list diversity@10 on content (`list_metrics`) is not
  below the latest blessed model's by more than `diversity_regression_tolerance` (relative),
  so recall is not bought with lists of near-duplicates. It is a lower bound on the derived
  `intra_list_diversity@10_change`, not a TFMA change threshold: that would fail for good once
  the blessed model predates the diversity output (or its catalogue has no content), while the
  derived value passes when there is nothing to compare with, as before any model is blessed
  (`retrieval_metrics.diversity_change` lists the cases);
* no cold-start regression: its Recall@50 on plays of tracks it never saw played in training
  (`cold_recall@50`) is not below the latest blessed model's by more than
  `cold_start_regression_tolerance` (absolute), once each has `MIN_COLD_PLAYS` such plays: a
  model must not buy recall on the established catalogue with new releases. A lower bound on
  the derived `cold_recall@50_change`, for the same reason as the diversity check;
* a faithful index: where the model serves through a partitioned index
  (components/trainer/served_index.py), the index's top 100 holds at least
  `index_recall_floor` of what exact scoring ranks there, on the eval queries
  (`index_recall@100`; 1 for a model that scores every track).
"""
import tensorflow_model_analysis as tfma

from crossfade.components.evaluator import retrieval_metrics
from crossfade.components.evaluator.list_metrics import LIST_CUTOFF
from crossfade.serving.signatures import EVALUATE_EXAMPLES

GATED_METRIC = retrieval_metrics.RECALL.format(retrieval_metrics.LIFT_CUTOFF)
LIFT_METRIC = retrieval_metrics.LIFT.format(retrieval_metrics.LIFT_CUTOFF)
DIVERSITY_GATED_METRIC = retrieval_metrics.DIVERSITY_CHANGE.format(LIST_CUTOFF)
COLD_GATED_METRIC = retrieval_metrics.COLD_CHANGE.format(retrieval_metrics.LIFT_CUTOFF)
INDEX_GATED_METRIC = retrieval_metrics.INDEX_RECALL.format(retrieval_metrics.INDEX_CUTOFF)


def _at_least(bound: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
        lower_bound={"value": bound}))


def retrieval_eval_config(lift_floor: float, regression_tolerance: float,
                          min_eval_plays: int, min_eval_users: int,
                          diversity_regression_tolerance: float,
                          cold_start_regression_tolerance: float,
                          index_recall_floor: float) -> tfma.EvalConfig:
    """EvalConfig for the `evaluate_examples` signature with the gate described above."""
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=EVALUATE_EXAMPLES)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(
            metrics=[tfma.MetricConfig(class_name=retrieval_metrics.RetrievalMetrics.__name__,
                                       module=retrieval_metrics.__name__)],
            thresholds={
                LIFT_METRIC: _at_least(lift_floor),
                retrieval_metrics.EVAL_PLAYS: _at_least(min_eval_plays),
                retrieval_metrics.EVAL_USERS: _at_least(min_eval_users),
                DIVERSITY_GATED_METRIC: _at_least(-diversity_regression_tolerance),
                COLD_GATED_METRIC: _at_least(-cold_start_regression_tolerance),
                INDEX_GATED_METRIC: _at_least(index_recall_floor),
                GATED_METRIC: tfma.MetricThreshold(
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        relative={"value": -regression_tolerance})),
            })])
