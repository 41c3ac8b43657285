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


# -- recommend ------------------------------------------------------------------------------

def test_recommend_controls_inputs_default_to_neutral_controls():
    inputs = signatures.recommend_controls_inputs(["u1", "u2"], [["a"], None], k=5,
                                                  platform="ios", timestamp=7)
    base = signatures.recommend_inputs(["u1", "u2"], [["a"], None], k=5, platform="ios",
                                       timestamp=7)
    assert sorted(inputs) == sorted(list(base) + list(signatures.CONTROL_INPUTS))
    for name, value in base.items():  # the serving_default part is exactly recommend_inputs'
        assert inputs[name].dtype == value.dtype and inputs[name].tolist() == value.tolist()
    assert inputs["exclude_track_ids"].shape == (2, 1)
    assert inputs["exclude_track_ids"].tolist() == [[b""], [b""]]
    expected = {"diversity": np.float32, "explore": np.float32, "seed": np.int64,
                "released_within_days": np.int32, "probe": np.int32}
    for name, dtype in expected.items():
        assert inputs[name].dtype == dtype and inputs[name].shape == (2,), name
        assert inputs[name].tolist() == [signatures.NEUTRAL_CONTROLS[name]] * 2, name
    assert signatures.non_neutral_controls(inputs) == []
    assert signatures.RECOMMEND == "recommend"


def test_recommend_controls_inputs_carry_per_row_controls():
    inputs = signatures.recommend_controls_inputs(
        ["u1", "u2", "u3"], exclude=[["a", "b", "c"], None, ["d"]], diversity=[0.0, 0.3, 1],
        explore=0.1, seed=[1, 2, -3], released_within_days=4, probe=[0, 8, 0])
    exclusions = inputs["exclude_track_ids"]
    assert exclusions.dtype == object and exclusions.shape == (3, 4)  # 3 -> a power of two
    assert exclusions.tolist() == [[b"a", b"b", b"c", b""], [b""] * 4, [b"d", b"", b"", b""]]
    np.testing.assert_array_equal(inputs["diversity"], np.float32([0.0, 0.3, 1.0]))
    np.testing.assert_array_equal(inputs["explore"], np.float32([0.1] * 3))
    assert inputs["seed"].tolist() == [1, 2, -3]
    assert inputs["released_within_days"].tolist() == [4] * 3  # a model without dates refuses
    assert inputs["probe"].tolist() == [0, 8, 0]
    assert signatures.non_neutral_controls(inputs) == list(signatures.CONTROL_INPUTS)
    assert signatures.non_neutral_controls(signatures.recommend_controls_inputs(
        ["u"], exclude=[[""]], seed=5)) == ["seed"]  # padding alone excludes nothing


def test_exclusions_matrix_widths():
    widths = {rows: signatures.exclusions_matrix([["t"] * rows]).shape[1]
              for rows in (0, 1, 2, 3, 4, 5, 40, 41)}
    assert widths == {0: 1, 1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 40: 64, 41: 64}


@pytest.mark.parametrize("controls, field", [
    ({"diversity": 1.5}, "diversity"),
    ({"diversity": -0.1}, "diversity"),
    ({"diversity": float("nan")}, "diversity"),
    ({"diversity": "0.5"}, "diversity"),
    ({"explore": [0.0, 2.0]}, "explore"),
    ({"explore": [0.1]}, "explore"),  # one value for two rows
    ({"probe": -1}, "probe"),
    ({"probe": 2 ** 31}, "probe"),
    ({"released_within_days": -1}, "released_within_days"),
    ({"seed": 2 ** 63}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"exclude": ["a", "b"]}, "exclude"),  # a string per row, not a list of ids
    ({"exclude": [["a"]]}, "exclude"),  # one row for two users
])
def test_bad_controls_are_refused_naming_the_field(controls, field):
    with pytest.raises(ValueError, match=field):
        signatures.recommend_controls_inputs(["u1", "u2"], **controls)


def test_recommend_inputs_agree_with_the_exported_model():
    from crossfade.components.trainer import export
    specs = export.QUERY_INPUT_SIGNATURE + (export.K_INPUT,) + export.CONTROL_INPUT_SIGNATURE
    inputs = signatures.recommend_controls_inputs(["u"])
    assert sorted(inputs) == sorted(spec.name for spec in specs)
    assert tuple(spec.name for spec in export.CONTROL_INPUT_SIGNATURE) == \
        signatures.CONTROL_INPUTS
    for spec in specs:
        value = inputs[spec.name]
        assert value.ndim == spec.shape.rank, spec.name
        assert value.dtype == spec.dtype.as_numpy_dtype, spec.name  # object for strings
