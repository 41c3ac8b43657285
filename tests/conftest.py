"""Session-wide pytest hooks."""
import os
import shutil
import sys
import tempfile

_exit_status = 0
_scratch = ""


def pytest_configure(config):
    # The session leaves without running atexit handlers (pytest_unconfigure), and those are
    # what delete AutoGraph's generated sources (`__autograph_generated_file*.py`, hundreds per
    # session). So everything the session and its child processes put in the temp folder
    # (those, pytest's tmp_path folders, TFX's packaging builds) goes below one folder of the
    # session's own, removed when it ends.
    global _scratch
    _scratch = tempfile.mkdtemp(prefix="crossfade-tests-")
    tempfile.tempdir = _scratch
    os.environ["TMPDIR"] = _scratch


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config):
    # TensorFlow objects still referenced at interpreter shutdown print "Exception ignored in
    # AtomicFunction.__del__" tracebacks after pytest's summary, burying its closing line.
    # Everything is reported and written by now, so leave without the interpreter teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    shutil.rmtree(_scratch, ignore_errors=True)
    os._exit(_exit_status)
