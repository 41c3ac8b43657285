"""The listening ExampleGens: history without leakage, the time split, and the executors."""
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import features
from components.example_gen import listening_example_gen as gen
from components.example_gen import schema
from components.listening_data import sources

DAY = 86400


def test_recent_tracks_holds_only_earlier_plays_of_the_same_user():
    users = np.array(["a", "a", "a", "b", "b"], dtype=object)
    tracks = np.array(["t1", "t2", "t3", "t4", "t5"], dtype=object)
    history = gen.recent_tracks(users, tracks, 3)
    assert history.tolist() == [
        ["", "", ""],
        ["t1", "", ""],
        ["t2", "t1", ""],
        ["", "", ""],  # user b: nothing from user a leaks in
        ["t4", "", ""],
    ]


def test_eval_start_is_the_first_second_of_the_eval_days():
    latest = 10 * DAY + 500
    assert gen.eval_start(latest, 1) == 10 * DAY
    assert gen.eval_start(latest, 3) == 8 * DAY


def test_encoded_examples_parse_with_the_raw_feature_spec():
    catalogue = sources.catalogue_from_track_ids(np.array(["t1"], dtype=object))
    catalogue.genres[0, 0] = "rock"
    plays = sources.Plays(
        user_id=np.array(["u"], object), track_id=np.array(["t1"], object),
        ts=np.array([5], np.int64), platform=np.array(["ios"], object),
        country=np.array(["SE"], object), ms_played=np.array([1000], np.int64),
        skipped=np.array([1], np.int64), reason_end=np.array(["fwdbtn"], object),
        weight=np.array([2.0], np.float32))
    outputs = list(gen.shard_examples((0, [plays]), eval_start_ts=10, catalogue=catalogue))
    assert [output.tag for output in outputs] == [gen.TRAIN_SPLIT]
    parsed = tf.io.parse_example([outputs[0].value], features.RAW_FEATURE_SPEC)
    assert parsed[features.USER_ID].numpy().tolist() == [b"u"]
    assert parsed[features.GENRES].numpy().tolist() == [[b"rock", b"", b""]]
    assert parsed[features.RECENT_TRACK_IDS].shape == (1, features.HISTORY_LENGTH)
    assert parsed[features.SKIPPED].numpy().tolist() == [1]
    assert parsed[features.WEIGHT].numpy().tolist() == [2.0]


def test_config_round_trips_through_custom_config():
    packed = gen.pack_config({"layout": "generic", "eval_days": 2})
    exec_properties = {standard_component_specs.CUSTOM_CONFIG_KEY:
                       proto_utils.proto_to_json(packed)}
    assert gen.listening_config(exec_properties) == {"layout": "generic", "eval_days": 2}


def test_schema_file_matches_the_feature_spec():
    with open(schema.PLAYS_SCHEMA_FILE) as handle:
        shipped = text_format.Parse(handle.read(), schema.schema_pb2.Schema())
    assert shipped == schema.plays_schema()


def _json(value):
    return value if isinstance(value, str) else proto_utils.proto_to_json(value)


def _run_executor(executor_class, data_dir, input_config, output_config, custom_config,
                  output_dir):
    examples = standard_artifacts.Examples()
    examples.uri = str(output_dir)
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: str(data_dir),
        standard_component_specs.INPUT_CONFIG_KEY: _json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: _json(output_config),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    if custom_config is not None:
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY] = _json(custom_config)
    executor_class().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]},
                        exec_properties)
    return examples


def _read_split(examples, split):
    uri = artifact_utils.get_split_uri([examples], split)
    files = tf.io.gfile.glob(os.path.join(uri, "*"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.io.parse_single_example(record, features.RAW_FEATURE_SPEC)
            for record in dataset]


@pytest.fixture
def generic_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = ["user_id,item_id,timestamp"]
    # Two users over three days; the last day is the eval period.
    for day, user, item in [(0, "u1", "i1"), (1, "u1", "i2"), (2, "u1", "i3"),
                            (0, "u2", "i2"), (2, "u2", "i1")]:
        rows.append(f"{user},{item},{day * DAY + 3600}")
    (data / "interactions.csv").write_text("\n".join(rows) + "\n")
    (data / "items.csv").write_text("item_id,artist,genres\ni1,A,rock\ni2,B,jazz|pop\ni3,A,rock\n")
    return data


def test_plays_executor_splits_by_time_with_history(generic_folder, tmp_path):
    component = gen.plays_example_gen(str(generic_folder), eval_days=1)
    properties = component.exec_properties
    examples = _run_executor(
        gen.PlaysExecutor, generic_folder, properties["input_config"],
        properties["output_config"], properties["custom_config"], tmp_path / "out")
    train = _read_split(examples, gen.TRAIN_SPLIT)
    evaluation = _read_split(examples, gen.EVAL_SPLIT)
    assert len(train) == 3 and len(evaluation) == 2
    assert all(int(e[features.TIMESTAMP]) >= 2 * DAY for e in evaluation)
    by_user = {e[features.USER_ID].numpy(): e for e in evaluation}
    assert by_user[b"u1"][features.RECENT_TRACK_IDS].numpy().tolist()[:3] == [b"i2", b"i1", b""]
    assert by_user[b"u2"][features.TRACK_ID].numpy() == b"i1"
    assert by_user[b"u2"][features.ARTIST].numpy() == b"A"  # content joined from items.csv


def test_plays_executor_rejects_data_without_an_eval_period(generic_folder, tmp_path):
    (generic_folder / "interactions.csv").write_text("user_id,item_id,timestamp\nu1,i1,5\n")
    component = gen.plays_example_gen(str(generic_folder), eval_days=1)
    properties = component.exec_properties
    with pytest.raises(Exception, match="train split is empty"):
        _run_executor(gen.PlaysExecutor, generic_folder, properties["input_config"],
                      properties["output_config"], properties["custom_config"],
                      tmp_path / "out")


def test_catalogue_executor_writes_every_track(generic_folder, tmp_path):
    component = gen.catalogue_example_gen(str(generic_folder))
    properties = component.exec_properties
    examples = _run_executor(gen.CatalogueExecutor, generic_folder,
                             properties["input_config"], properties["output_config"], None,
                             tmp_path / "out")
    uri = artifact_utils.get_split_uri([examples], gen.CATALOGUE_SPLIT)
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(uri, "*")),
                                      compression_type="GZIP")
    tracks = sorted(tf.io.parse_single_example(r, features.CATALOGUE_FEATURE_SPEC)
                    [features.TRACK_ID].numpy() for r in records)
    assert tracks == [b"i1", b"i2", b"i3"]
