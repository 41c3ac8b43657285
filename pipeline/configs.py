"""Every setting of a crossfade pipeline run, in one place.

`PipelineConfig` holds paths, the split protocol, serving limits, the blessing gate, Beam arguments
and the model's hyperparameters (`components.trainer.model.Hyperparameters`); the defaults here
are the product defaults used by `make run`.
"""
import dataclasses
import os
from typing import Dict, Tuple

from components.example_gen.split_protocols import SplitProtocol
from components.stream_qualification.rules import QualificationRules
from components.trainer import distribution
from components.trainer.model import Hyperparameters

PIPELINE_NAME = "crossfade"
MODEL_NAME = "crossfade"

# Beam for the data components of `crossfade run` (LocalDagRunner): the in-process DirectRunner
# has the lowest start-up cost for data of this size. `--runner beam` uses multi_processing;
# pipeline/beam_args.py has the Dataflow, Flink and Spark argument sets.
LOCAL_BEAM_ARGS: Tuple[str, ...] = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


# Hyperparameters chosen per dataset by the search documented in README.md ("Quality
# benchmark"), on the eval split; `crossfade benchmark quality` trains with these.
DATASET_HYPERPARAMETERS: Dict[str, Hyperparameters] = {
    # 1,892 users with whole artist profiles as history: the user is their profile (no free
    # user vector, which overfits 40 positives) with 60 % of it masked in each step,
    # 128-d embeddings, a softer temperature and more epochs than the streaming default.
    "lastfm-hetrec": Hyperparameters(embedding_dim=128, id_embedding_dim=128, temperature=0.1,
                                     epochs=40, history_dropout=0.6, use_user_id=False,
                                     time_context=False),
}


def dataset_hyperparameters(dataset: str) -> Hyperparameters:
    """The tuned hyperparameters of a benchmark dataset (the product defaults otherwise)."""
    return DATASET_HYPERPARAMETERS.get(dataset, Hyperparameters())


def fit_to_data(hyperparameters: Hyperparameters, has_timestamps: bool) -> Hyperparameters:
    """`hyperparameters` with the time context off for data without timestamps."""
    if has_timestamps:
        return hyperparameters
    return dataclasses.replace(hyperparameters, time_context=False)


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
    chart_size: int = 100  # tracks in the last day's top chart (the cold-start ranking)
    default_k: int = 10
    max_k: int = 100
    # Blessing: Recall@50 >= lift_floor x most-popular Recall@50, and no relative regression
    # beyond regression_tolerance against the latest blessed model.
    lift_floor: float = 1.2
    regression_tolerance: float = 0.01
    # The Trainer's tf.distribute strategy: default | mirrored | multi_worker_mirrored
    # (components/trainer/distribution.py documents each, and TF_CONFIG for multi-worker).
    distribution_strategy: str = distribution.DEFAULT
    beam_pipeline_args: Tuple[str, ...] = LOCAL_BEAM_ARGS
    enable_cache: bool = True

    def __post_init__(self):
        if not 1 <= self.default_k <= self.max_k:
            raise ValueError(f"need 1 <= default_k <= max_k, got {self.default_k}, {self.max_k}")
        if self.max_k < 100:
            raise ValueError(f"max_k must be at least 100, got {self.max_k}")
        if self.distribution_strategy not in distribution.STRATEGY_NAMES:
            raise ValueError(f"distribution_strategy must be one of "
                             f"{list(distribution.STRATEGY_NAMES)}, got "
                             f"{self.distribution_strategy!r}")

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_base_path(self) -> str:
        """TF Serving's --model_base_path: versions are pushed to <this>/<version>."""
        return os.path.join(self.output_dir, "serving", self.model_name)

    def trainer_custom_config(self) -> Dict[str, object]:
        return {
            "hyperparameters": dataclasses.asdict(self.hyperparameters),
            "default_k": self.default_k,
            "max_k": self.max_k,
            "distribution_strategy": self.distribution_strategy,
        }

    def with_hyperparameters(self, **overrides) -> "PipelineConfig":
        return dataclasses.replace(
            self, hyperparameters=dataclasses.replace(self.hyperparameters, **overrides))
