"""Every setting of a crossfade pipeline run, in one place.

`PipelineConfig` holds paths, the split protocol, serving limits, the blessing gate, Beam arguments
and the model's hyperparameters (`crossfade.components.trainer.hyperparameters`); the defaults
here are the product defaults used by `make run`. Nothing here imports model code (TensorFlow
Recommenders): the wiring, `crossfade compile` and the command line read settings cheaply.
"""
import dataclasses
import os
from typing import Dict, Mapping, Optional, Tuple

from crossfade.components.example_gen.split_protocols import SplitProtocol
from crossfade.components.listening_data import play_checks
from crossfade.components.simulation_gate.settings import SimulationGateSettings
from crossfade.components.stream_qualification.rules import QualificationRules
from crossfade.components.trainer import distribution, run_config
from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.pipeline import beam_args
from crossfade.serving.model_base_path import MODEL_NAME

PIPELINE_NAME = "crossfade"

# Beam for the data components of `crossfade run` (LocalDagRunner): the in-process DirectRunner
# has the lowest start-up cost for data of this size. `--runner beam` uses multi_processing;
# pipeline/beam_args.py has the Dataflow, Flink and Spark argument sets.
LOCAL_BEAM_ARGS: Tuple[str, ...] = beam_args.in_memory()


# Trials of a tuned run (`crossfade run --tune`): each trains the model once as the Trainer
# does, so tuning costs about this many Trainer runs.
DEFAULT_TUNE_TRIALS = 10


# Hyperparameters chosen per dataset by the search documented in README.md ("Quality
# benchmark"), on the eval split; `crossfade benchmark quality` trains with these.
DATASET_HYPERPARAMETERS: Dict[str, Hyperparameters] = {
    # 1,892 users with whole artist profiles as history: the user is their profile (no free
    # user vector, which overfits 40 positives) with 60 % of it masked in each step,
    # 128-d embeddings, a softer temperature and more epochs than the streaming default;
    # Adam at 0.002 (+0.024 eval Recall@10 over Adagrad on seed 0, at about three quarters
    # of its examples/s: Adam updates every embedding row each step).
    "lastfm-hetrec": Hyperparameters(embedding_dim=128, id_embedding_dim=128, temperature=0.1,
                                     epochs=40, history_dropout=0.6, use_user_id=False,
                                     time_context=False, optimizer="adam",
                                     learning_rate=0.002),
}


def dataset_hyperparameters(dataset: str) -> Hyperparameters:
    """The tuned hyperparameters of a benchmark dataset (the product defaults otherwise)."""
    return DATASET_HYPERPARAMETERS.get(dataset, Hyperparameters())


def hyperparameters_for_data(data_dir: str, dataset: str = "",
                             overrides: Optional[Mapping[str, object]] = None
                             ) -> Hyperparameters:
    """The hyperparameters a pipeline on the local folder `data_dir` trains with.

    In this order, each step over the one before: the product defaults; the tuned set of
    `dataset` (default: the format `crossfade import` recorded in the folder's manifest); the
    hour/weekday context off when the data has no timestamps (serving would fill them with
    "now", a train/serve skew); `overrides` (`--set NAME=VALUE`: an explicit choice wins,
    unknown names are a ValueError).
    """
    # Here, not at the top: settings load no data-reading code (sources imports TensorFlow).
    from crossfade.components.listening_data import sources
    from crossfade.components.listening_data.layout import imported_format
    local = bool(data_dir) and os.path.isdir(data_dir)  # "" or gs://: nothing to read here
    dataset = dataset or (imported_format(data_dir) if local else "")
    chosen = dataclasses.asdict(dataset_hyperparameters(dataset))
    if local and not sources.has_timestamps(data_dir, sources.detect_layout(data_dir)):
        chosen["time_context"] = False
    return Hyperparameters.from_dict({**chosen, **dict(overrides or {})})


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One pipeline: its input data, its output folder and how it trains and gates models."""

    data_dir: str
    output_dir: str
    pipeline_name: str = PIPELINE_NAME
    model_name: str = MODEL_NAME
    # How plays are divided into train, eval (blessing) and test (quality benchmark): by
    # default the last 3 days evaluate, or a random 8:1:1 per user for data without
    # timestamps (components/example_gen/split_protocols.py).
    split: SplitProtocol = SplitProtocol()
    hyperparameters: Hyperparameters = Hyperparameters()
    # What counts as a stream, play weights and the bot rule (components/stream_qualification).
    qualification_rules: QualificationRules = QualificationRules()
    # A training play of a track its listener saved ("liked", likes.csv) weighs this many times
    # a plain one; a saved track never played in training becomes an example of this weight
    # (components/example_gen/likes.py). 0 leaves likes unread. 1.5: on simulated listeners
    # 1.5 and 2 leave Recall@10/50 within seed noise of 0 and 4 costs 1-2 % (README, Likes).
    like_weight: float = 1.5
    chart_size: int = 100  # tracks in the last day's top chart (the cold-start ranking)
    default_k: int = 10
    max_k: int = 100
    # Tracks the `recommend` signature re-ranks for diversity and exploration (at least k).
    candidate_pool: int = run_config.DEFAULT_CANDIDATE_POOL
    # Blessing: Recall@50 >= lift_floor x most-popular Recall@50, and no relative regression
    # beyond regression_tolerance against the latest blessed model.
    lift_floor: float = 1.2
    regression_tolerance: float = 0.01
    # ... and at least this many eval plays by this many distinct users (tiny: ~2k eval plays
    # by ~290 users; Last.fm HetRec's random split: ~9k by 1,892), so that a tiny eval split
    # (say, moved by a few future-dated plays) never blesses.
    min_eval_plays: int = 100
    min_eval_users: int = 20
    # ... and intra-list diversity@10 not below the latest blessed model's by more than this
    # (relative; 1 turns the check off). 5 %, not regression_tolerance's 1 %: diversity is a
    # guard rail, not the objective, and a retrained model's lists move by a few per cent
    # without any change of behaviour; a slide into near-duplicate lists is far larger.
    diversity_regression_tolerance: float = 0.05
    # ... and Recall@50 on eval plays of tracks without training examples (new releases) not
    # below the latest blessed model's by more than this (absolute; 1 turns it off), once both
    # have 100 such plays (retrieval_metrics.MIN_COLD_PLAYS). Absolute, as cold recall can sit
    # near 0. On the default data (~400 cold plays, cold Recall@50 ~0.08) the standard error
    # of the difference between two models is ~0.02: 0.03 refuses a model that loses more
    # than a third of its cold recall without gating on noise.
    cold_start_regression_tolerance: float = 0.03
    # ... and, for a model served through a partitioned index (Hyperparameters.index), at
    # least this share of the exact top 100 in the index's top 100 on the eval queries.
    index_recall_floor: float = 0.95
    # ... and, on simulator-made data, a short simulated A/B test against the latest pushed
    # model: no simulated stream-rate regression beyond its margin (2 %). On imported data
    # the Evaluator's blessing passes through (components/simulation_gate).
    simulation_gate: SimulationGateSettings = SimulationGateSettings()
    # Plays dated after the run's clock + 1 day or before 2000-01-01
    # (components/listening_data/play_checks.py): "reject" (default: the run stops with file,
    # row and field) or "drop" (dropped and counted; `crossfade status` shows the count).
    timestamp_policy: str = play_checks.REJECT
    # The Trainer's tf.distribute strategy: default | mirrored | multi_worker_mirrored
    # (components/trainer/distribution.py documents each, and TF_CONFIG for multi-worker).
    distribution_strategy: str = distribution.DEFAULT
    # A Tuner between Transform and the Trainer (components/tuner): `tune_trials` trials over
    # its search space, each trained on train and scored on the eval split by the Evaluator's
    # gated Recall@50; the Trainer trains the winner. Off: the Trainer trains
    # `hyperparameters` as they are.
    tune: bool = False
    tune_trials: int = DEFAULT_TUNE_TRIALS
    beam_pipeline_args: Tuple[str, ...] = LOCAL_BEAM_ARGS
    enable_cache: bool = True

    def __post_init__(self):
        if not 1 <= self.default_k <= self.max_k:
            raise ValueError(f"need 1 <= default_k <= max_k, got {self.default_k}, {self.max_k}")
        if self.max_k < 100:
            raise ValueError(f"max_k must be at least 100, got {self.max_k}")
        if self.candidate_pool < 1:
            raise ValueError(f"candidate_pool must be at least 1, got {self.candidate_pool}")
        if self.min_eval_plays < 1 or self.min_eval_users < 1:
            raise ValueError(f"min_eval_plays and min_eval_users must be at least 1, got "
                             f"{self.min_eval_plays}, {self.min_eval_users}")
        for name in ("diversity_regression_tolerance", "cold_start_regression_tolerance",
                     "index_recall_floor"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        play_checks.check_timestamp_policy(self.timestamp_policy)
        if not (self.like_weight == 0 or 1 <= self.like_weight < float("inf")):
            raise ValueError(f"like_weight must be 0 (likes unread) or at least 1 (a like is "
                             f"not weaker than a stream), got {self.like_weight}")
        if self.distribution_strategy not in distribution.STRATEGY_NAMES:
            raise ValueError(f"distribution_strategy must be one of "
                             f"{list(distribution.STRATEGY_NAMES)}, got "
                             f"{self.distribution_strategy!r}")
        if not isinstance(self.tune, bool):
            raise ValueError(f"tune must be true or false, got {self.tune!r}")
        if (isinstance(self.tune_trials, bool) or not isinstance(self.tune_trials, int)
                or self.tune_trials < 1):
            raise ValueError(f"tune_trials must be an integer of at least 1, got "
                             f"{self.tune_trials!r}")

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def last_run_path(self) -> str:
        """`crossfade run`'s record of its latest run (summary and component wall times)."""
        return os.path.join(self.output_dir, "last_run.json")

    @property
    def serving_base_path(self) -> str:
        """TF Serving's --model_base_path: versions are pushed to <this>/<version>."""
        return os.path.join(self.output_dir, "serving", self.model_name)

    def trainer_custom_config(self) -> Dict[str, object]:
        return {
            run_config.HYPERPARAMETERS_KEY: dataclasses.asdict(self.hyperparameters),
            run_config.DEFAULT_K_KEY: self.default_k,
            run_config.MAX_K_KEY: self.max_k,
            run_config.CANDIDATE_POOL_KEY: self.candidate_pool,
            run_config.DISTRIBUTION_STRATEGY_KEY: self.distribution_strategy,
        }

    def tuner_custom_config(self) -> Dict[str, object]:
        """The Trainer's settings (trials train as it does) and the number of trials."""
        return {**self.trainer_custom_config(), run_config.TUNE_TRIALS_KEY: self.tune_trials}

    @classmethod
    def for_data(cls, data_dir: str, output_dir: str, dataset: str = "",
                 overrides: Optional[Mapping[str, object]] = None,
                 **settings) -> "PipelineConfig":
        """The config of a run on `data_dir`: `hyperparameters_for_data` and `settings`."""
        return cls(data_dir=data_dir, output_dir=output_dir,
                   hyperparameters=hyperparameters_for_data(data_dir, dataset, overrides),
                   **settings)

    def with_hyperparameters(self, **overrides) -> "PipelineConfig":
        return dataclasses.replace(
            self, hyperparameters=dataclasses.replace(self.hyperparameters, **overrides))
