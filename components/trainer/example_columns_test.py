import numpy as np
import pytest
import tensorflow as tf

from crossfade.components.trainer import example_columns

SPEC = {
    "index": tf.io.FixedLenFeature([], tf.int64),
    "history": tf.io.FixedLenFeature([3], tf.int64),
    "time": tf.io.FixedLenFeature([], tf.int64),
    "weight": tf.io.FixedLenFeature([], tf.float32),
}


def _example(row: int) -> bytes:
    feature = {
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[row])),
        "history": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[row, row + 1, row + 2])),
        "time": tf.train.Feature(int64_list=tf.train.Int64List(value=[2**40 + row])),
        "weight": tf.train.Feature(float_list=tf.train.FloatList(value=[row / 2])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path, rows) -> None:
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in rows:
            writer.write(_example(row))


@pytest.fixture
def files(tmp_path, monkeypatch):
    # Batches of 3 rows: 23 plays grow every column several times.
    monkeypatch.setattr(example_columns, "READ_BATCH", 3)
    _write(tmp_path / "a.gz", range(0, 10))
    _write(tmp_path / "b.gz", range(10, 23))
    return [str(tmp_path / "*.gz")]


def test_columns_hold_every_example_in_file_order_with_narrowed_indices(files):
    columns = example_columns.load_columns(files, SPEC, narrow=("index", "history"))
    assert columns.size == 23
    assert columns.narrowed == {"index", "history"}
    # Variables: a dataset captures them by handle, where it would copy a tensor.
    assert all(isinstance(values, tf.Variable) for values in columns.tensors.values())
    assert columns.tensors["index"].dtype == tf.int32
    assert columns.tensors["time"].dtype == tf.int64
    np.testing.assert_array_equal(columns.tensors["index"].numpy(), np.arange(23))
    np.testing.assert_array_equal(columns.tensors["history"].numpy(),
                                  np.arange(23)[:, None] + np.arange(3))
    np.testing.assert_array_equal(columns.numpy("time"), 2**40 + np.arange(23))
    np.testing.assert_allclose(columns.numpy("weight"), np.arange(23) / 2)


def test_rows_give_back_the_original_dtypes(files):
    columns = example_columns.load_columns(files, SPEC, narrow=("index", "history"))
    rows = columns.rows(tf.constant([22, 0, 5]))
    assert {name: values.dtype for name, values in rows.items()} == {
        "index": tf.int64, "history": tf.int64, "time": tf.int64, "weight": tf.float32}
    np.testing.assert_array_equal(rows["index"].numpy(), [22, 0, 5])
    np.testing.assert_array_equal(rows["history"].numpy()[0], [22, 23, 24])
    assert columns.numpy("index").dtype == np.int64


def test_a_transform_applies_to_every_batch_and_only_named_outputs_narrow(files):
    columns = example_columns.load_columns(
        files, SPEC, transform=lambda parsed: {"doubled": parsed["index"] * 2},
        narrow=("doubled", "absent"))
    assert columns.narrowed == {"doubled"}
    np.testing.assert_array_equal(columns.numpy("doubled"), 2 * np.arange(23))


def test_no_files_and_no_examples_are_errors_naming_the_patterns(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        example_columns.load_columns([str(tmp_path / "nothing-here*")], SPEC)
    _write(tmp_path / "empty.gz", [])
    with pytest.raises(ValueError, match="empty.gz"):
        example_columns.load_columns([str(tmp_path / "empty.gz")], SPEC)


def test_each_epoch_is_a_fresh_permutation_of_full_batches(files):
    columns = example_columns.load_columns(files, SPEC, narrow=("index",))
    dataset, steps = example_columns.shuffled_batches(columns, batch_size=5, epochs=3, seed=7)
    assert steps == 4  # 23 // 5: the last partial batch is dropped
    batches = [batch["index"].numpy() for batch in dataset]
    assert len(batches) == 12 and all(batch.shape == (5,) for batch in batches)
    epochs = [np.concatenate(batches[i * 4:(i + 1) * 4]) for i in range(3)]
    for epoch in epochs:
        assert len(set(epoch)) == 20 and set(epoch) <= set(range(23))
    assert not np.array_equal(epochs[0], epochs[1])
    again = [batch["index"].numpy() for batch in
             example_columns.shuffled_batches(columns, 5, 3, seed=7)[0]]
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(again))


def test_a_batch_larger_than_the_data_is_the_data():
    columns = example_columns.Columns({"x": tf.range(4)})
    dataset, steps = example_columns.shuffled_batches(columns, batch_size=100, epochs=1, seed=0)
    assert steps == 1
    assert sorted(next(iter(dataset))["x"].numpy()) == [0, 1, 2, 3]


def test_training_batches_run_without_the_autotuning_model(files):
    # Its thread can hold up the deletion of a finished iterator by many seconds.
    columns = example_columns.load_columns(files, SPEC, narrow=("index",))
    dataset, _ = example_columns.shuffled_batches(columns, batch_size=5, epochs=1, seed=0)
    assert dataset.options().autotune.enabled is False
