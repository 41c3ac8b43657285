"""The Evaluator's extractors: TFMA's own, without splitting batches where nothing needs it.

TFX's Evaluator calls `custom_extractors` from the module named by its `module_path` (the
pipeline names this one). TFMA (0.47) runs the model on batches of examples, then splits
every batch into one extract per example (`UnbatchExtractor`), so that slicing and metrics
see examples one at a time: each example becomes a dict of its features and predictions
(here 100 top tracks, a 40-track history), is sliced, filtered for its metrics and crosses a
Beam stage on its own. Measured on the TFX Evaluator alone (README, Benchmarks, Scale): a
quarter of its time on `default` (15 s, most of the rest fixed costs), a tenth on `large`
(626 s, most of the rest scoring 100,000 tracks per play).

Nothing in crossfade's evaluation needs examples one at a time: `retrieval_metrics`' combiner
sums, counts and unions over a batch of plays as over one (its inputs are [B] or [B, K]
arrays), and the blessing gate reads the overall slice only. So, when the config slices
nothing but the overall slice, the extractors are TFMA's defaults minus `UnbatchExtractor`:
the same model, reads, metrics and thresholds, on batches. The metrics are the same either
way (tests/test_end_to_end.py compares both on one model and eval split).

Any other config (a feature slice, a cross slice, a query key) keeps TFMA's defaults
unchanged: slices are per example, and a batch would be sliced by its first example.
"""
from typing import List, Optional

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors.unbatch_extractor import UNBATCH_EXTRACTOR_STAGE_NAME
from tfx_bsl.tfxio import tensor_adapter


def evaluates_overall_only(eval_config: tfma.EvalConfig) -> bool:
    """True when the only slice is the overall one and no metrics group examples by query."""
    overall = tfma.SlicingSpec()
    return (all(spec == overall for spec in eval_config.slicing_specs)
            and not eval_config.cross_slicing_specs
            and not any(spec.query_key for spec in eval_config.metrics_specs))


def custom_extractors(eval_shared_model: tfma.MaybeMultipleEvalSharedModels,
                      eval_config: tfma.EvalConfig,
                      tensor_adapter_config: Optional[tensor_adapter.TensorAdapterConfig]
                      ) -> List[tfma.extractors.Extractor]:
    """TFMA's default extractors; without `UnbatchExtractor` if `evaluates_overall_only`."""
    extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                         eval_config=eval_config,
                                         tensor_adapter_config=tensor_adapter_config)
    if not evaluates_overall_only(eval_config):
        return extractors
    return [extractor for extractor in extractors
            if extractor.stage_name != UNBATCH_EXTRACTOR_STAGE_NAME]
