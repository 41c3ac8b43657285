"""Freeing a servable's resources wherever its finalizer happens to run."""
import logging

import pytest
import tensorflow as tf

from crossfade.serving.servable import destroy_resources


@pytest.mark.parametrize("context", ["graph", "function"])
def test_resources_are_freed_eagerly_wherever_the_finalizer_runs(caplog, context):
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(["a"]), tf.constant([1], tf.int64)), -1)
    handle = table.resource_handle
    assert int(table.lookup(tf.constant("a"))) == 1

    @tf.function
    def traced():
        # As when cyclic garbage collection finalizes a servable during another trace.
        destroy_resources([handle], "a test table")
        return tf.constant(0)

    with caplog.at_level(logging.WARNING):
        if context == "graph":  # ... or while a library builds a TF1-style graph
            with tf.Graph().as_default():
                destroy_resources([handle], "a test table")
        else:
            traced()
    assert "Could not free" not in caplog.text
    with pytest.raises(tf.errors.NotFoundError):
        table.lookup(tf.constant("a"))
