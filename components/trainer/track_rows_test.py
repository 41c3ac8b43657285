"""The id -> row table: lookups before and after a SavedModel round trip, the ids kept out
of the graph, and ids that a line-per-id file cannot hold refused by row."""
import os

import numpy as np
import pytest
import tensorflow as tf

from crossfade.components.trainer import track_rows

IDS = [f"spotify:track:{i:022d}" for i in range(1000)]


def test_looks_up_rows_of_any_shape_and_unknown_ids_as_not_found():
    rows = track_rows.TrackRows(IDS)
    found = rows(tf.constant([[IDS[7], "nope"], [IDS[999], IDS[0]]]))
    assert found.dtype == tf.int32
    np.testing.assert_array_equal(found.numpy(), [[7, track_rows.NOT_FOUND], [999, 0]])


def test_bytes_and_str_ids_are_the_same_ids():
    rows = track_rows.TrackRows([b"a", "b\u00e9"])
    np.testing.assert_array_equal(rows(tf.constant(["b\u00e9", "a"])).numpy(), [1, 0])


class _Holder(tf.Module):
    def __init__(self, ids):
        super().__init__()
        self.rows = track_rows.TrackRows(ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup(self, ids):
        return self.rows(ids)


def test_a_saved_model_reads_the_ids_from_its_asset_not_its_graph(tmp_path):
    path = str(tmp_path / "model")
    holder = _Holder(IDS)
    tf.saved_model.save(holder, path)
    holder.rows._folder.cleanup()  # the SavedModel must read its own copy
    with open(os.path.join(path, "assets", track_rows.ASSET_NAME), "rb") as file:
        assert file.read().split(b"\n")[:2] == [IDS[0].encode(), IDS[1].encode()]
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        graph = file.read()
    assert not any(track_id.encode() in graph for track_id in IDS[::50])
    loaded = tf.saved_model.load(path)
    np.testing.assert_array_equal(
        loaded.lookup(tf.constant([IDS[500], "other", IDS[3]])).numpy(), [500, -1, 3])


@pytest.mark.parametrize("bad, row, problem", [
    (["a", "b\nc"], 1, "line break"),
    (["a", "b\rc"], 1, "line break"),
    (["a", "", "c"], 1, "non-empty"),
    (["a", "b", "c", "b"], 3, "repeats"),
])
def test_ids_a_line_per_id_file_cannot_hold_are_refused_by_row(bad, row, problem):
    with pytest.raises(ValueError, match=f"row {row} .*{problem}"):
        track_rows.TrackRows(bad)


def test_ids_that_are_not_text_are_refused_by_row():
    with pytest.raises(TypeError, match="row 1 is a int"):
        track_rows.TrackRows(["a", 12345])
