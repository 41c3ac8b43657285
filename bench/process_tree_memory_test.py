"""TreePeak sees the memory of a child's own children, and stops when the tree is gone."""
import subprocess
import sys
import textwrap

from bench.process_tree_memory import TreePeak  # noqa: TID251 -- bench itself, not product code

MIB = 2**20

# A parent that starts a grandchild holding 300 MiB (touched, so resident), waits for it to
# say so, and exits once the grandchild is done.
_TREE = textwrap.dedent("""
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c",
        "import sys, time; b = bytearray(300 * 2**20); print('ready', flush=True); time.sleep(3)"],
        stdout=subprocess.PIPE, text=True)
    print(child.stdout.readline().strip(), flush=True)
    child.wait()
""")


def test_peak_includes_grandchildren():
    parent = subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True)
    tree = TreePeak(parent.pid, interval=0.05).start()
    assert parent.stdout.readline().strip() == "ready"
    parent.wait()
    peak = tree.stop()
    # The grandchild alone holds 300 MiB; neither python interpreter is near that by itself.
    assert peak >= 300 * MIB


def test_a_finished_process_has_no_peak():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process
    assert TreePeak(child.pid, interval=0.05).start().stop() == 0
