"""Peak resident memory of this process over a stretch of a run (Linux).

The kernel keeps a process's peak resident set size (``VmHWM`` in /proc/self/status) and
resets it to the current size when "5" is written to /proc/self/clear_refs, so a run's
components, which the local orchestrators execute one after another in this process, each
get their own peak: `reset()` before a component, `peak_bytes()` after it.

What it does not see: worker processes (Beam's multi_processing mode, a Kubeflow pod), whose
memory is their own. Elsewhere than Linux both functions do nothing / return None.
"""
import re
from typing import Optional

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_RESET_PEAK = "5"  # proc(5): "reset the peak resident set size to the current one"


def reset() -> bool:
    """Starts a new peak at the current resident size; False where that is not possible."""
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write(_RESET_PEAK)
        return True
    except OSError:
        return False


def peak_bytes() -> Optional[int]:
    """The peak resident set size since the last `reset()` (or the process start), in bytes;
    None where the kernel does not report it."""
    try:
        with open(_STATUS) as handle:
            match = re.search(r"^VmHWM:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None
