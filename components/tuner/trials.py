"""The Tuner's record of its search, in ML Metadata and beside its artifacts.

After the search the executor (component.py) keeps, beside what TFX's Tuner writes (the
winner's keras_tuner config as `best_hyperparameters`, and `tuner_results.json` in the
TunerResults folder, which lists completed trials only):

* `TRIALS_FILE` in the TunerResults folder: every trial in the order it ran, with its id,
  status, searched values, score (the objective), the held-out metrics and training time it
  measured, and the error of a failed one (`trial_records`);
* custom properties of the `best_hyperparameters` artifact (`winner_properties`): the
  objective's name, the winning trial, its score and values (JSON), how many trials completed
  and failed, and the URI of `TRIALS_FILE`. The artifact's folder itself holds only the
  config file: TFX's Trainer reads the only file in it.

`crossfade status` (pipeline/run_summary.py) reads both back.
"""
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional

from keras_tuner.engine import trial as kt_trial
from tfx import types
from tfx.utils import io_utils

TRIALS_FILE = "trials.json"
COMPLETED = kt_trial.TrialStatus.COMPLETED
# Custom properties of the best_hyperparameters artifact.
OBJECTIVE = "objective"
BEST_TRIAL = "best_trial_id"
BEST_SCORE = "best_score"
BEST_VALUES = "best_values"  # JSON
COMPLETED_TRIALS = "completed_trials"
FAILED_TRIALS = "failed_trials"
TRIALS_URI = "trials_file"


def _number(value: Optional[float]) -> Optional[float]:
    """A finite float, or None (a trial without a score)."""
    return None if value is None or not math.isfinite(value) else float(value)


def trial_records(oracle: Any, details: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Every trial of a keras_tuner `oracle`, in the order it started, with the `details`
    (trial id -> what its run measured) of each."""
    records = []
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        record = {"trial_id": trial_id, "status": str(trial.status),
                  "values": dict(trial.hyperparameters.values), "score": _number(trial.score),
                  **details.get(trial_id, {})}
        if trial.status != COMPLETED and trial.message:
            record["error"] = trial.message.strip().splitlines()[-1]  # the exception's line
        records.append(record)
    return records


def winner_properties(records: List[Dict[str, Any]], best_trial_id: str, objective: str,
                      trials_uri: str) -> Dict[str, Any]:
    """The custom properties of `best_hyperparameters`, from `trial_records`' records."""
    best = next(record for record in records if record["trial_id"] == best_trial_id)
    completed = sum(record["status"] == COMPLETED for record in records)
    return {OBJECTIVE: objective, BEST_TRIAL: best_trial_id, BEST_SCORE: float(best["score"]),
            BEST_VALUES: json.dumps(best["values"], sort_keys=True),
            COMPLETED_TRIALS: completed, FAILED_TRIALS: len(records) - completed,
            TRIALS_URI: trials_uri}


def set_properties(artifact: types.Artifact, properties: Mapping[str, Any]) -> None:
    """Sets each of `properties` as the artifact's custom property of its type."""
    for name, value in properties.items():
        if isinstance(value, int):  # bools too
            artifact.set_int_custom_property(name, int(value))
        elif isinstance(value, float):
            artifact.set_float_custom_property(name, value)
        else:
            artifact.set_string_custom_property(name, str(value))


def record(best_hyperparameters: types.Artifact, tuner_results: types.Artifact,
           records: List[Dict[str, Any]], best_trial_id: str, objective: str) -> None:
    """Writes `TRIALS_FILE` into `tuner_results` and the winner onto `best_hyperparameters`."""
    path = os.path.join(tuner_results.uri, TRIALS_FILE)
    io_utils.write_string_file(path, json.dumps(records, indent=1, sort_keys=True))
    set_properties(best_hyperparameters,
                   winner_properties(records, best_trial_id, objective, path))
