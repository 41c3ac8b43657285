"""Which output folder a pipeline run is using right now: an OS lock held for the run's life.

`crossfade run` (both local runners) holds an exclusive `flock` on `<output>/run.lock` while it
runs. The kernel releases the lock when the process ends for any reason (finished, crashed,
killed with SIGKILL, machine restarted), so:

* a second run on the same output folder is refused at once (two runs would interleave their
  ML Metadata writes and race on the serving base path), and
* `crossfade status` tells a run in progress from one whose process is gone: ML Metadata
  keeps the last state it was told, RUNNING, forever after a kill; with the lock free, no
  process can still be running it, so status reports INTERRUPTED.

Local filesystems only (flock); cluster runs are tracked by their orchestrator.
"""
import contextlib
import fcntl
import os
from typing import Iterator

LOCK_FILE = "run.lock"


class RunInProgressError(RuntimeError):
    """Another process is running a pipeline on this output folder."""


def _lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, LOCK_FILE)


@contextlib.contextmanager
def hold(output_dir: str) -> Iterator[None]:
    """Holds the output folder's run lock for the `with` block; RunInProgressError if taken."""
    os.makedirs(output_dir, exist_ok=True)
    with open(_lock_path(output_dir), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgressError(
                f"another crossfade run is using {output_dir} (it holds "
                f"{_lock_path(output_dir)}); wait for it or use another --output") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # for people; the lock itself is what counts
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def in_progress(output_dir: str) -> bool:
    """Whether a live process holds the output folder's run lock."""
    try:
        handle = open(_lock_path(output_dir))
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
