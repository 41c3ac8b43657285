"""The run lock: held while a run lives, free once its process is gone (even after SIGKILL)."""
import signal
import subprocess
import sys
import textwrap

import pytest

from crossfade.pipeline import run_lock

_HOLDER = textwrap.dedent("""
    import sys, time
    from crossfade.pipeline import run_lock
    with run_lock.hold(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_held_for_the_block_then_free(tmp_path):
    assert not run_lock.in_progress(str(tmp_path))
    with run_lock.hold(str(tmp_path)):
        assert run_lock.in_progress(str(tmp_path))
    assert not run_lock.in_progress(str(tmp_path))


def test_a_killed_run_leaves_the_lock_free_and_a_live_one_refuses_a_second(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_lock.in_progress(str(tmp_path))
        with pytest.raises(run_lock.RunInProgressError, match="another crossfade run"):
            with run_lock.hold(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert not run_lock.in_progress(str(tmp_path))


@pytest.mark.parametrize("state, alive, shown", [
    ("RUNNING", False, "INTERRUPTED"), ("NEW", False, "INTERRUPTED"),
    ("RUNNING", True, "RUNNING"), ("COMPLETE", False, "COMPLETE"), ("CACHED", False, "CACHED")])
def test_status_says_interrupted_when_no_process_runs_the_run(state, alive, shown):
    from ml_metadata.proto import metadata_store_pb2

    from crossfade.pipeline import run_summary
    execution = metadata_store_pb2.Execution(
        last_known_state=metadata_store_pb2.Execution.State.Value(state))
    assert run_summary.state_name(execution, alive) == shown
