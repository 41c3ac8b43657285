"""The contract between the pipeline, the Trainer's and the Tuner's executors, `run_fn`
(train.py) and `tuner_fn` (components/tuner/tuning.py).

`run_fn` and `tuner_fn` read their settings from `custom_config` under these keys: the
pipeline writes the first group (`crossfade.pipeline.configs.PipelineConfig`), the executors
(components/trainer/component.py, components/tuner/component.py) add the catalogue and chart
locations, and the Tuner's the held-out plays. `run_fn` writes `TRAINING_STATS_FILE` into the
ModelRun artifact, which `crossfade status` reads back. Kept free of TensorFlow so the wiring
and the status command import it cheaply.
"""
# Written by the pipeline.
HYPERPARAMETERS_KEY = "hyperparameters"  # dataclasses.asdict(Hyperparameters)
DEFAULT_K_KEY = "default_k"
MAX_K_KEY = "max_k"
CANDIDATE_POOL_KEY = "candidate_pool"  # tracks the `recommend` signature re-ranks
# The 200 keeps MMR and exploration among relevant tracks and their cost (a [200, 200]
# cosine matrix and k sequential picks per row) small beside scoring the catalogue.
DEFAULT_CANDIDATE_POOL = 200
DISTRIBUTION_STRATEGY_KEY = "distribution_strategy"  # a distribution.STRATEGY_NAMES name
# Written by the pipeline for the Tuner only: how many trials it runs.
TUNE_TRIALS_KEY = "tune_trials"
# Added by the executors: the catalogue's example file patterns, the top chart's folder.
CATALOGUE_URIS_KEY = "catalogue_uris"
CHART_URI_KEY = "chart_uri"
# Added by the Tuner's executor: the file patterns of the raw eval split each trial is
# scored on.
HELD_OUT_URIS_KEY = "held_out_uris"

# In the ModelRun artifact: examples trained, seconds, examples per second, epoch times, and
# the hyperparameters trained with (with a Tuner: also the configured ones and its winner's).
TRAINING_STATS_FILE = "training_stats.json"
