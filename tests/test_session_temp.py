"""The test session's temporary files go below a folder of its own (tests/conftest.py)."""
import os
import tempfile


def test_the_session_and_its_children_write_temp_files_below_its_own_folder():
    scratch = tempfile.gettempdir()
    assert os.path.basename(scratch).startswith("crossfade-tests-")
    assert os.environ["TMPDIR"] == scratch
    with tempfile.NamedTemporaryFile() as handle:  # what AutoGraph writes its sources with
        assert os.path.dirname(handle.name) == scratch
