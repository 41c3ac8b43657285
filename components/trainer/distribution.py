"""The Trainer's tf.distribute strategy, chosen by name from the pipeline config.

Names (`STRATEGY_NAMES`):

* ``"default"``: `tf.distribute.get_strategy()`, the no-op default strategy: one device, the
  same code path as no strategy at all. The product default.
* ``"mirrored"``: `tf.distribute.MirroredStrategy()`: synchronous data parallelism over every
  GPU of this machine (the CPU when there is none), gradients all-reduced each step.
* ``"multi_worker_mirrored"``: `tf.distribute.MultiWorkerMirroredStrategy()`: the same over
  several machines. Each worker process reads the cluster from the ``TF_CONFIG`` environment
  variable, a JSON object such as::

      {"cluster": {"worker": ["trainer-0.trainer:12345", "trainer-1.trainer:12345"]},
       "task": {"type": "worker", "index": 0}}

  Every worker runs the same `run_fn` with its own ``task.index``; worker 0 is the chief and
  is the one whose export counts. Vertex AI custom training and Kubeflow's TFJob write
  ``TF_CONFIG`` for each replica themselves; set it by hand only for a hand-made cluster.
  Without ``TF_CONFIG`` the strategy runs as one local worker. With it, TensorFlow must
  create the strategy before any other TensorFlow operation of the process ("Collective ops
  must be configured at program startup" otherwise): create it first thing in `run_fn` and
  run each Trainer worker in its own process, as Kubeflow and Vertex AI do.

With any strategy, build the model and its optimizer inside `strategy.scope()` and feed
`fit` the global batch: Keras splits each batch across the replicas, so every replica computes
its in-batch softmax over ``batch_size / num_replicas_in_sync`` candidates. Scale
``batch_size`` with the number of replicas to keep the same negatives per example.
"""
from typing import TYPE_CHECKING, Dict, Tuple

if TYPE_CHECKING:
    import tensorflow as tf

DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER_MIRRORED = "multi_worker_mirrored"

# Names of the `tf.distribute` factories; TensorFlow is imported only when a strategy is made,
# so settings (`crossfade.pipeline.configs`) validate names without it.
_FACTORIES: Dict[str, str] = {
    DEFAULT: "get_strategy",
    MIRRORED: "MirroredStrategy",
    MULTI_WORKER_MIRRORED: "MultiWorkerMirroredStrategy",
}
STRATEGY_NAMES: Tuple[str, ...] = tuple(_FACTORIES)


def strategy_from_name(name: str) -> "tf.distribute.Strategy":
    """The strategy called `name` (one of `STRATEGY_NAMES`); see the module docstring."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown distribution strategy {name!r}; expected one of "
                         f"{list(STRATEGY_NAMES)}") from None
    import tensorflow as tf  # here, not at the top: see _FACTORIES
    return getattr(tf.distribute, factory)()
