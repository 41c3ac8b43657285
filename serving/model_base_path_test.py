"""Version folders as TF Serving sees them, on the local disk and on a non-local filesystem."""
import uuid

import pytest
import tensorflow as tf

from crossfade.serving import model_base_path


def _layout(base: str) -> str:
    """12 and 0012 (one version), 3, a staging folder, a digit-named file, other stray names."""
    for folder in ("12", "0012", "3", ".staging-99", "notes", "12a"):
        tf.io.gfile.makedirs(tf.io.gfile.join(base, folder, "variables"))
    with tf.io.gfile.GFile(tf.io.gfile.join(base, "7"), "w") as handle:
        handle.write("a file, not a version")
    return base


@pytest.fixture(params=["local", "ram"])
def base(request, tmp_path) -> str:
    if request.param == "local":
        return _layout(str(tmp_path / "crossfade"))
    # TensorFlow's in-memory filesystem stands in for gs:// (listed through tf.io.gfile too).
    return _layout(f"ram://{uuid.uuid4().hex}/crossfade")


def test_versions_are_all_digit_folders_the_first_name_of_a_number_wins(base):
    assert model_base_path.versions(base) == {3: "3", 12: "0012"}


def test_served_versions_oldest_first(base):
    assert model_base_path.served_versions(base) == ["3", "0012"]


def test_a_missing_base_path(tmp_path):
    assert model_base_path.served_versions(str(tmp_path / "missing")) == []
    with pytest.raises(tf.errors.NotFoundError):
        model_base_path.versions(str(tmp_path / "missing"))
