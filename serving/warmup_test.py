"""Warmup requests: the file TF Serving reads, and replaying it on a loaded version."""
import os
import shutil

import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import prediction_log_pb2

from crossfade.serving import signatures, warmup
from crossfade.serving.conftest import TOY_TRACKS
from crossfade.serving.servable import Servable


def _logs(path: str):
    return [prediction_log_pb2.PredictionLog.FromString(record)
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def test_the_file_holds_predict_logs_for_both_signatures(tmp_path):
    users = [f"u{i}" for i in range(3)]
    path = warmup.write_warmup_requests(str(tmp_path), users, [["a", "b"], [], ["c"]],
                                        ["a", "b"])
    assert path == os.path.join(str(tmp_path), "assets.extra", "tf_serving_warmup_requests")
    logs = _logs(path)
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    requests = [log.predict_log.request for log in logs]
    by_signature = {}
    for request in requests:
        by_signature.setdefault(request.model_spec.signature_name, []).append(request)
    assert len(by_signature[signatures.SERVING_DEFAULT]) == 3 + 1  # per user + one batch
    assert len(by_signature[signatures.SIMILAR_TRACKS]) == 2 + 1
    first = by_signature[signatures.SERVING_DEFAULT][0]
    assert set(first.inputs) == {"user_id", "recent_track_ids", "timestamp", "platform", "k"}
    assert first.inputs["k"].dtype == types_pb2.DT_INT32
    assert first.inputs["timestamp"].dtype == types_pb2.DT_INT64
    assert [d.size for d in first.inputs["recent_track_ids"].tensor_shape.dim] == \
        [1, signatures.RECENT_TRACKS_WIDTH]
    batch = by_signature[signatures.SERVING_DEFAULT][-1]
    assert list(batch.inputs["k"].int_val) == [warmup.LARGEST_K] * 3
    read = list(warmup.read_warmup_requests(str(tmp_path)))
    assert [name for name, _ in read] == [r.model_spec.signature_name for r in requests]


def test_the_number_of_records_stays_under_tf_servings_limit(tmp_path):
    users = [f"u{i}" for i in range(5000)]
    path = warmup.write_warmup_requests(str(tmp_path), users, [[]] * len(users),
                                        [f"t{i}" for i in range(5000)])
    assert len(_logs(path)) == 2 * (warmup.MAX_EACH + 1) <= warmup.TF_SERVING_MAX_RECORDS


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        warmup.write_warmup_requests(str(tmp_path), ["u1"], [], [])
    with pytest.raises(ValueError):
        warmup.write_warmup_requests(str(tmp_path), [], [], [])


def test_replay_runs_every_request(toy_template, tmp_path):
    export_dir = str(tmp_path / "model")
    shutil.copytree(toy_template, export_dir)
    warmup.write_warmup_requests(export_dir, ["u1", "u2"], [[TOY_TRACKS[1]], []],
                                 TOY_TRACKS[:4])
    servable = Servable.load("toy", 1, export_dir)
    assert warmup.replay(servable) == 2 + 1 + 4 + 1
    shutil.rmtree(os.path.join(export_dir, warmup.WARMUP_DIR))
    assert warmup.replay(servable) == 0  # no file: nothing to do


def _sample(data_dir: str, count: int):
    import csv
    import glob
    plays = sorted(glob.glob(os.path.join(data_dir, "plays", "span-*", "plays.csv")))[-1]
    history = {}
    with open(plays) as handle:
        for row in csv.DictReader(handle):
            history.setdefault(row["username"], []).insert(0, row["spotify_track_uri"])
    users = list(history)[:count]
    return users, [history[user][:10] for user in users]


def test_replay_on_a_pipeline_model(pushed_model, tmp_path):
    export_dir = str(tmp_path / "model")
    shutil.copytree(pushed_model.path, export_dir)
    users, recent = _sample(pushed_model.data_dir, 20)
    tracks = sorted({track for row in recent for track in row})[:20]
    warmup.write_warmup_requests(export_dir, users, recent, tracks)
    servable = Servable.load("crossfade", pushed_model.version, export_dir)
    assert warmup.replay(servable) == len(users) + 1 + len(tracks) + 1


def test_pushed_models_carry_warmup_requests(pushed_model):
    if not os.path.exists(warmup.warmup_path(pushed_model.path)):
        pytest.skip("the Trainer does not write warmup requests yet "
                    "(serving.warmup.write_warmup_requests after tf.saved_model.save)")
    assert _logs(warmup.warmup_path(pushed_model.path))
