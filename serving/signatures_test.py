"""Request tensors for crossfade's signatures, and agreement with the exported model's."""
import numpy as np
import pytest

from crossfade.serving import signatures


def test_recommend_inputs_pad_recent_tracks_to_one_rectangle():
    longest = signatures.RECENT_TRACKS_WIDTH + 2
    inputs = signatures.recommend_inputs(["u1", "u2", "u3"],
                                         [["a", "b"], None, [f"t{i}" for i in range(longest)]],
                                         k=7, platform="ios", timestamp=None)
    assert inputs["recent_track_ids"].shape == (3, longest)
    assert inputs["recent_track_ids"][0].tolist()[:3] == [b"a", b"b", b""]
    assert inputs["recent_track_ids"][1].tolist() == [b""] * longest
    assert inputs["k"].dtype == np.int32 and inputs["k"].tolist() == [7, 7, 7]
    assert inputs["timestamp"].dtype == np.int64 and inputs["timestamp"].tolist() == [0] * 3
    assert inputs["platform"].tolist() == [b"ios"] * 3
    assert signatures.recommend_inputs(["u"])["recent_track_ids"].shape == (
        1, signatures.RECENT_TRACKS_WIDTH)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        signatures.recommend_inputs([])
    with pytest.raises(ValueError):
        signatures.recommend_inputs(["u1", "u2"], [["a"]])
    with pytest.raises(ValueError):
        signatures.recommend_inputs(["u1"], k=[1, 2])


def test_names_agree_with_the_exported_model():
    from crossfade.components import features
    from crossfade.components.trainer import export
    assert signatures.SERVING_DEFAULT == export.SERVING_DEFAULT
    assert signatures.SIMILAR_TRACKS == export.SIMILAR_TRACKS
    assert signatures.RECENT_TRACKS_WIDTH == features.HISTORY_LENGTH
    assert signatures.PAD == features.PAD_TOKEN
    query_inputs = [spec.name for spec in export.QUERY_INPUT_SIGNATURE] + [export.K_INPUT.name]
    assert sorted(signatures.recommend_inputs(["u"])) == sorted(query_inputs)
    dtypes = {spec.name: spec.dtype.as_numpy_dtype for spec in export.QUERY_INPUT_SIGNATURE}
    for name, value in signatures.recommend_inputs(["u"]).items():
        if name in dtypes and value.dtype != object:
            assert value.dtype == dtypes[name]
