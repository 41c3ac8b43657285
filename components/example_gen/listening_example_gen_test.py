"""The listening ExampleGens: split protocols applied by the executors, and the catalogue."""
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from crossfade.components import features
from crossfade.components.example_gen import listening_example_gen as gen
from crossfade.components.example_gen import schema, split_protocols
from crossfade.components.listening_data import play_checks, sources

DAY = 86400
START = 19_675 * DAY  # 2023-11-14T00:00:00Z: plays must be plausibly dated (play_checks)


def test_encoded_examples_parse_with_the_raw_feature_spec():
    catalogue = sources.catalogue_from_track_ids(np.array(["t1"], dtype=object))
    catalogue.genres[0, 0] = "rock"
    plays = sources.Plays(
        user_id=np.array(["u"], object), track_id=np.array(["t1"], object),
        ts=np.array([5], np.int64), platform=np.array(["ios"], object),
        country=np.array(["SE"], object), ms_played=np.array([1000], np.int64),
        skipped=np.array([1], np.int64), reason_end=np.array(["fwdbtn"], object),
        weight=np.array([2.0], np.float32))
    pieces, like_counts = gen.shard_examples(
        (0, [plays]), periods=(10, 20), catalogue=catalogue,
        protocol=split_protocols.SplitProtocol(name="time"))
    by_split = dict(pieces)
    assert list(by_split) == [split_protocols.TRAIN_SPLIT] and like_counts == {}
    parsed = tf.io.parse_example(by_split[split_protocols.TRAIN_SPLIT],
                                 features.RAW_FEATURE_SPEC)
    assert parsed[features.USER_ID].numpy().tolist() == [b"u"]
    assert parsed[features.GENRES].numpy().tolist() == [[b"rock", b"", b""]]
    assert parsed[features.RECENT_TRACK_IDS].shape == (1, features.HISTORY_LENGTH)
    assert parsed[features.SKIPPED].numpy().tolist() == [1]
    assert parsed[features.WEIGHT].numpy().tolist() == [2.0]


def _shard_files(folder, chunk, monkeypatch):
    """(write_shard's outputs, {split: the tf.Examples of shard 3's file}) with ENCODE_CHUNK
    `chunk`: ten plays of two users, of which the time protocol holds the last three days out.
    Examples, not bytes: a serialized Example's feature map has no fixed order."""
    monkeypatch.setattr(gen, "ENCODE_CHUNK", chunk)
    tracks = np.array([f"t{i}" for i in range(4)], dtype=object)
    catalogue = sources.catalogue_from_track_ids(tracks)
    days = np.array([0, 1, 5, 6, 9, 0, 2, 7, 8, 9])
    plays = sources.Plays(
        user_id=np.array(["a"] * 5 + ["b"] * 5, object), track_id=tracks[np.arange(10) % 4],
        ts=START + days * DAY, platform=np.array(["ios"] * 10, object),
        country=np.array(["SE"] * 10, object), ms_played=np.arange(10, dtype=np.int64) * 1000,
        skipped=np.zeros(10, np.int64), reason_end=np.array(["trackdone"] * 10, object),
        weight=np.ones(10, np.float32))
    uris = {split: str(folder / split) for split in split_protocols.SPLIT_NAMES}
    for uri in uris.values():
        os.makedirs(uri)
    outputs = list(gen.write_shard((3, [plays]), uris, (START + 7 * DAY, START + 10 * DAY),
                                   catalogue, split_protocols.SplitProtocol(name="time")))
    records = {split: [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(
        tf.io.gfile.glob(os.path.join(uri, "*")), compression_type="GZIP")]
        for split, uri in uris.items()}
    return outputs, records


def test_a_shard_written_in_pieces_holds_the_same_examples(tmp_path, monkeypatch):
    whole = _shard_files(tmp_path / "whole", 1000, monkeypatch)
    pieces = _shard_files(tmp_path / "pieces", 3, monkeypatch)
    assert pieces == whole
    outputs, records = whole
    assert outputs == [{split_protocols.TRAIN_SPLIT: 6, split_protocols.EVAL_SPLIT: 4}]
    assert {split: len(found) for split, found in records.items()} == {
        split_protocols.TRAIN_SPLIT: 6, split_protocols.EVAL_SPLIT: 4,
        split_protocols.TEST_SPLIT: 0}


def test_config_round_trips_through_custom_config():
    protocol = split_protocols.SplitProtocol(name="random", seed=3)
    packed = gen.pack_config({"layout": "generic", "split": protocol.to_dict()})
    exec_properties = {standard_component_specs.CUSTOM_CONFIG_KEY:
                       proto_utils.proto_to_json(packed)}
    settings = gen.listening_config(exec_properties)
    assert settings["layout"] == "generic"
    assert split_protocols.SplitProtocol.from_dict(settings["split"]) == protocol


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
        rows.append(f"{user},{item},{START + day * DAY + 3600}")
    (data / "interactions.csv").write_text("\n".join(rows) + "\n")
    (data / "items.csv").write_text("item_id,artist,genres\ni1,A,rock\ni2,B,jazz|pop\ni3,A,rock\n")
    return data


def test_plays_executor_splits_by_time_with_history(generic_folder, tmp_path):
    component = gen.plays_example_gen(str(generic_folder),
                                      split_protocols.SplitProtocol(eval_days=1))
    properties = component.exec_properties
    examples = _run_executor(
        gen.PlaysExecutor, generic_folder, properties["input_config"],
        properties["output_config"], properties["custom_config"], tmp_path / "out")
    train = _read_split(examples, split_protocols.TRAIN_SPLIT)
    evaluation = _read_split(examples, split_protocols.EVAL_SPLIT)
    assert len(train) == 3 and len(evaluation) == 2
    assert all(int(e[features.TIMESTAMP]) >= START + 2 * DAY for e in evaluation)
    by_user = {e[features.USER_ID].numpy(): e for e in evaluation}
    assert by_user[b"u1"][features.RECENT_TRACK_IDS].numpy().tolist()[:3] == [b"i2", b"i1", b""]
    assert by_user[b"u2"][features.TRACK_ID].numpy() == b"i1"
    assert by_user[b"u2"][features.ARTIST].numpy() == b"A"  # content joined from items.csv
    # What downstream components read besides the records: the artifact's properties, and one
    # file per user shard and split, named as TFX's WriteSplit names its files.
    assert artifact_utils.decode_split_names(examples.split_names) == [
        split_protocols.TRAIN_SPLIT, split_protocols.EVAL_SPLIT]
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    shards = {int(shard) for shard in gen.user_shards(np.array(["u1", "u2"], object))}
    for split in (split_protocols.TRAIN_SPLIT, split_protocols.EVAL_SPLIT):
        names = sorted(os.listdir(artifact_utils.get_split_uri([examples], split)))
        assert names == [f"data_tfrecord-{shard:05d}-of-{gen.NUM_USER_SHARDS:05d}.gz"
                         for shard in sorted(shards)]


def test_plays_executor_rejects_data_without_an_eval_period(generic_folder, tmp_path):
    (generic_folder / "interactions.csv").write_text(
        f"user_id,item_id,timestamp\nu1,i1,{START + 5}\n")
    component = gen.plays_example_gen(str(generic_folder),
                                      split_protocols.SplitProtocol(eval_days=1))
    properties = component.exec_properties
    with pytest.raises(Exception, match="train split is empty"):
        _run_executor(gen.PlaysExecutor, generic_folder, properties["input_config"],
                      properties["output_config"], properties["custom_config"],
                      tmp_path / "out")


def _run_plays(folder, protocol, output_dir, timestamp_policy=play_checks.REJECT):
    properties = gen.plays_example_gen(str(folder), protocol,
                                       timestamp_policy=timestamp_policy).exec_properties
    return _run_executor(gen.PlaysExecutor, folder, properties["input_config"],
                         properties["output_config"], properties["custom_config"], output_dir)


@pytest.fixture
def untimed_folder(tmp_path):
    """Play counts without timestamps (as Last.fm HetRec): 3 users x 10 items."""
    data = tmp_path / "untimed"
    data.mkdir()
    rows = ["user_id,item_id,weight"] + [f"u{u},i{(u * 3 + k) % 12},1" for u in range(3)
                                         for k in range(10)]
    (data / "interactions.csv").write_text("\n".join(rows) + "\n")
    return data


def test_data_without_timestamps_defaults_to_the_random_split(untimed_folder):
    config = gen.listening_config(
        gen.plays_example_gen(str(untimed_folder), split_protocols.SplitProtocol())
        .exec_properties)
    assert config["split"]["name"] == split_protocols.RANDOM
    with pytest.raises(ValueError, match="needs timestamps"):
        gen.plays_example_gen(str(untimed_folder), split_protocols.SplitProtocol(name="time"))


def test_random_split_holds_out_per_user_and_histories_use_train_items_only(
        untimed_folder, tmp_path):
    protocol = split_protocols.SplitProtocol(name="random", seed=5)
    examples = _run_plays(untimed_folder, protocol, tmp_path / "out")
    splits = {name: _read_split(examples, name) for name in split_protocols.SPLIT_NAMES}
    # 10 plays per user: 8 train, 1 eval, 1 test each.
    assert [len(splits[name]) for name in split_protocols.SPLIT_NAMES] == [24, 3, 3]
    train_items = {}
    for example in splits["train"]:
        train_items.setdefault(example[features.USER_ID].numpy(), set()).add(
            example[features.TRACK_ID].numpy())
    for name, split in splits.items():
        for example in split:
            user, track = example[features.USER_ID].numpy(), example[features.TRACK_ID].numpy()
            history = {t for t in example[features.RECENT_TRACK_IDS].numpy().tolist() if t}
            assert track not in history  # never its own label
            assert history <= train_items[user]  # nothing held out leaks into any history
            assert len(history) == (7 if name == "train" else 8)
    again = _run_plays(untimed_folder, protocol, tmp_path / "again")
    assert ([e[features.TRACK_ID].numpy() for e in _read_split(again, "test")]
            == [e[features.TRACK_ID].numpy() for e in splits["test"]])


def test_cold_items_are_test_only_and_never_in_a_history(untimed_folder, tmp_path):
    protocol = split_protocols.SplitProtocol(name="random", seed=5, cold_items=0.25)
    items = np.array([f"i{i}" for i in range(12)], dtype=object)
    cold = set(items[split_protocols.cold_item_rows(items, 0.25, seed=5)])
    assert 0 < len(cold) < 12
    examples = _run_plays(untimed_folder, protocol, tmp_path / "out")
    splits = {name: _read_split(examples, name) for name in split_protocols.SPLIT_NAMES}
    tracks = {name: [e[features.TRACK_ID].numpy().decode() for e in split]
              for name, split in splits.items()}
    assert not cold & (set(tracks["train"]) | set(tracks["eval"]))
    assert cold <= set(tracks["test"])
    for split in splits.values():
        for example in split:
            history = {t.decode() for t in example[features.RECENT_TRACK_IDS].numpy() if t}
            assert not history & cold


def test_time_split_with_a_test_period(generic_folder, tmp_path):
    protocol = split_protocols.SplitProtocol(name="time", eval_days=1, test_days=1)
    examples = _run_plays(generic_folder, protocol, tmp_path / "out")
    days = {name: sorted((int(e[features.TIMESTAMP]) - START) // DAY
                         for e in _read_split(examples, name))
            for name in split_protocols.SPLIT_NAMES}
    assert days == {"train": [0, 0], "eval": [1], "test": [2, 2]}


def _catalogue_examples(folder, output_dir):
    """The catalogue examples the CatalogueExecutor writes for `folder`, parsed."""
    properties = gen.catalogue_example_gen(str(folder)).exec_properties
    examples = _run_executor(gen.CatalogueExecutor, folder, properties["input_config"],
                             properties["output_config"], None, output_dir)
    uri = artifact_utils.get_split_uri([examples], gen.CATALOGUE_SPLIT)
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(uri, "*")),
                                      compression_type="GZIP")
    return [tf.io.parse_single_example(r, features.CATALOGUE_FEATURE_SPEC) for r in records]


def test_catalogue_executor_writes_every_track(generic_folder, tmp_path):
    tracks = sorted(e[features.TRACK_ID].numpy()
                    for e in _catalogue_examples(generic_folder, tmp_path / "out"))
    assert tracks == [b"i1", b"i2", b"i3"]


def test_catalogue_examples_carry_release_days(generic_folder, tmp_path):
    (generic_folder / "items.csv").write_text(
        "item_id,artist,release_date\ni1,A,2024-03-27\ni2,B,\ni3,A,1999\n")
    days = {e[features.TRACK_ID].numpy(): int(e[features.RELEASE_DAY])
            for e in _catalogue_examples(generic_folder, tmp_path / "out")}
    assert days == {b"i1": 19809, b"i2": features.NO_RELEASE_DAY, b"i3": 10592}


def _add_rows(folder, *rows):
    with open(folder / "interactions.csv", "a") as handle:
        handle.write("".join(f"{row}\n" for row in rows))


def test_future_dated_plays_are_rejected_by_default(generic_folder, tmp_path):
    _add_rows(generic_folder, "u1,i1,4070908800")  # 2099-01-01
    with pytest.raises(Exception, match="row 6, field 'timestamp': play after the run's clock"):
        _run_plays(generic_folder, split_protocols.SplitProtocol(eval_days=1), tmp_path / "o")


def test_dropped_future_plays_and_copies_are_counted_and_do_not_move_the_eval_window(
        generic_folder, tmp_path):
    _add_rows(generic_folder, "u1,i1,4070908800", "u2,i2,4070908801", f"u1,i1,{START + 3600}")
    examples = _run_plays(generic_folder, split_protocols.SplitProtocol(eval_days=1),
                          tmp_path / "out", timestamp_policy=play_checks.DROP)
    assert len(_read_split(examples, "train")) == 3
    assert len(_read_split(examples, "eval")) == 2  # the last real day, not 2099
    assert examples.get_int_custom_property(play_checks.OUT_OF_RANGE_PLAYS) == 2
    assert examples.get_int_custom_property(play_checks.DUPLICATE_PLAYS) == 1


def test_unknown_timestamp_policy_is_refused(generic_folder):
    with pytest.raises(ValueError, match="timestamp_policy"):
        gen.plays_example_gen(str(generic_folder), split_protocols.SplitProtocol(),
                              timestamp_policy="keep")


@pytest.fixture
def liked_folder(tmp_path):
    """A simulator-layout folder: u1 streams a (day 0) and b (day 1, eval), and saved a on
    day 0 and c (never played) with no time."""
    data = tmp_path / "liked"
    header = ("ts,username,platform,ms_played,conn_country,master_metadata_track_name,"
              "master_metadata_album_artist_name,master_metadata_album_album_name,"
              "spotify_track_uri,reason_start,reason_end,shuffle,skipped,offline")
    (data / "plays" / "span-0001").mkdir(parents=True)
    rows = [f"{day}T10:00:00Z,u1,ios,200000,SE,,,,{uri},clickrow,trackdone,false,false,false"
            for day, uri in (("2023-11-14", "t:a"), ("2023-11-15", "t:b"))]
    (data / "plays" / "span-0001" / "plays.csv").write_text("\n".join([header] + rows) + "\n")
    (data / "catalogue.csv").write_text("track_id\nt:a\nt:b\nt:c\n")
    (data / "likes.csv").write_text("user_id,track_id,ts\nu1,t:a,2023-11-14T10:00:00Z\n"
                                    "u1,t:c,\n")
    return data


def _run_liked(folder, output_dir, like_weight):
    properties = gen.plays_example_gen(str(folder), split_protocols.SplitProtocol(eval_days=1),
                                       like_weight=like_weight).exec_properties
    return _run_executor(gen.PlaysExecutor, folder, properties["input_config"],
                         properties["output_config"], properties["custom_config"], output_dir)


def test_likes_weigh_training_plays_and_add_saved_tracks_as_examples(liked_folder, tmp_path):
    examples = _run_liked(liked_folder, tmp_path / "out", like_weight=2.5)
    train = {e[features.TRACK_ID].numpy(): e for e in _read_split(examples, "train")}
    assert sorted(train) == [b"t:a", b"t:c"]
    assert float(train[b"t:a"][features.WEIGHT]) == 2.5
    assert float(train[b"t:c"][features.WEIGHT]) == 2.5
    assert train[b"t:c"][features.RECENT_TRACK_IDS].numpy().tolist()[:2] == [b"t:a", b""]
    assert [e[features.TRACK_ID].numpy() for e in _read_split(examples, "eval")] == [b"t:b"]
    assert examples.get_int_custom_property(play_checks.LIKES_READ) == 2
    assert examples.get_int_custom_property(play_checks.LIKES_AS_EXAMPLES) == 1
    assert examples.get_int_custom_property(play_checks.LIKED_PLAYS) == 1


def test_like_weight_zero_leaves_likes_unread(liked_folder, tmp_path):
    (liked_folder / "likes.csv").write_text("not,a,likes file\n\x00")
    examples = _run_liked(liked_folder, tmp_path / "out", like_weight=0.0)
    train = _read_split(examples, "train")
    assert [float(e[features.WEIGHT]) for e in train] == [1.0]
    assert examples.get_int_custom_property(play_checks.LIKES_READ) == 0


def test_a_changed_likes_file_changes_the_example_gen_configuration(liked_folder):
    def config():
        return gen.plays_example_gen(str(liked_folder), split_protocols.SplitProtocol(),
                                     like_weight=2.0).exec_properties["custom_config"]
    before = config()
    (liked_folder / "likes.csv").write_text("user_id,track_id,ts\nu1,t:b,\n")
    assert config() != before  # TFX's cache key: a stale output is never reused


def test_bad_likes_stop_the_run_with_their_location(liked_folder, tmp_path):
    (liked_folder / "likes.csv").write_text("user_id,track_id,ts\nu1,t:zz,\n")
    with pytest.raises(Exception, match="likes.csv, row 1, field 'track_id': track is not in"):
        _run_liked(liked_folder, tmp_path / "out", like_weight=2.0)
