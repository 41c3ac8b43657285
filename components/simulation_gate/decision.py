"""The simulation gate's verdict, from the Evaluator's blessing and the simulated A/B test.

Pure functions of their inputs, so every branch is tested without a pipeline:

* the Evaluator did not bless: not blessed, nothing simulated;
* the data has no simulator truth (imported data): the Evaluator's blessing passes through;
* no model has been pushed yet: blessed (there is nothing to compare with);
* else blessed iff ``candidate >= (1 - margin) * baseline`` on simulated stream rate.
"""
import dataclasses
from typing import Optional

EVALUATOR_REJECTED = "the Evaluator did not bless the candidate"
NO_TRUTH = "imported data has no simulator truth: the Evaluator's blessing passes through"
NO_BASELINE = "no model pushed yet: nothing to compare with"


@dataclasses.dataclass(frozen=True)
class Verdict:
    blessed: bool
    reason: str
    candidate_stream_rate: Optional[float] = None
    baseline_stream_rate: Optional[float] = None


def verdict(evaluator_blessed: bool, simulated: bool, margin: float,
            candidate: Optional[float] = None, baseline: Optional[float] = None) -> Verdict:
    """See the module docstring; ``candidate``/``baseline`` are simulated stream rates."""
    if not evaluator_blessed:
        return Verdict(False, EVALUATOR_REJECTED)
    if not simulated:
        return Verdict(True, NO_TRUTH)
    if candidate is None:
        raise ValueError("a simulated verdict needs the candidate's stream rate")
    if baseline is None:
        return Verdict(True, NO_BASELINE, candidate)
    floor = (1.0 - margin) * baseline
    if candidate >= floor:
        reason = (f"simulated stream rate {candidate:.4f} >= {floor:.4f} "
                  f"(the pushed model's {baseline:.4f} less {margin:.0%})")
        return Verdict(True, reason, candidate, baseline)
    reason = (f"simulated stream rate {candidate:.4f} < {floor:.4f} "
              f"(the pushed model's {baseline:.4f} less {margin:.0%}): regression")
    return Verdict(False, reason, candidate, baseline)
