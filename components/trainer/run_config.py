"""The contract between the pipeline, the Trainer's executor and `run_fn` (train.py).

`run_fn` reads its settings from the Trainer's `custom_config` under these keys: the
pipeline writes the first group (`crossfade.pipeline.configs.PipelineConfig`), the executor
(component.py) adds the catalogue and chart locations. `run_fn` writes `TRAINING_STATS_FILE`
into the ModelRun artifact, which `crossfade status` reads back. Kept free of TensorFlow so the
wiring and the status command import it cheaply.
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
# Added by the executor: the catalogue's example file patterns, the top chart's folder.
CATALOGUE_URIS_KEY = "catalogue_uris"
CHART_URI_KEY = "chart_uri"

# In the ModelRun artifact: examples trained, seconds, examples per second, epoch times.
TRAINING_STATS_FILE = "training_stats.json"
