"""TreePeak sees the memory of a child's own children, divides shared pages in its PSS, keeps
peaks per label, and stops when the tree is gone."""
import subprocess
import sys
import textwrap

from bench.process_tree_memory import Memory, TreePeak  # noqa: TID251 -- bench itself, not product code

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

# A process that touches 300 MiB, then forks: parent and child share those pages until either
# writes them, so each has them resident but the two hold them once.
_FORKED = textwrap.dedent("""
    import os, sys, time
    b = b"x" * (300 * 2**20)  # written, so resident
    if os.fork() == 0:
        time.sleep(3)
        os._exit(0)
    print("ready", flush=True)
    os.wait()
""")


def _peak_while(script: str, label=None) -> TreePeak:
    """The stopped TreePeak of `script`'s process tree, sampled until it exits."""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    tree = TreePeak(process.pid, interval=0.05)
    tree.label = label
    tree.start()
    assert process.stdout.readline().strip() == "ready"
    process.wait()
    tree.stop()
    return tree


def test_peak_includes_grandchildren():
    peak = _peak_while(_TREE).peak
    # The grandchild alone holds 300 MiB; neither python interpreter is near that by itself.
    assert peak.rss >= 300 * MIB
    assert peak.pss >= 300 * MIB


def test_pss_counts_pages_shared_by_a_fork_once():
    peak = _peak_while(_FORKED).peak
    assert peak.rss >= 600 * MIB  # both processes have the 300 MiB resident
    assert 300 * MIB <= peak.pss < 450 * MIB  # but they are held once


def test_peaks_are_kept_per_label():
    tree = _peak_while(_TREE, label="Trainer")
    assert tree.peak_by_label == {"Trainer": tree.peak}
    assert set(tree.first_by_label) == {"Trainer"}


def test_the_roots_share_is_the_one_at_the_peak():
    peak = _peak_while(_TREE).peak
    # The 300 MiB are the grandchild's: the root, a bare interpreter, holds far less of the peak.
    assert 0 < peak.root_pss < 100 * MIB


def test_max_keeps_the_root_share_of_the_larger_pss():
    assert Memory(5, 10, 1).max(Memory(9, 8, 7)) == Memory(9, 10, 1)
    assert Memory(5, 10, 1).max(Memory(3, 12, 7)) == Memory(5, 12, 7)


def test_a_finished_process_has_no_peak():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process
    peak = TreePeak(child.pid, interval=0.05).start().stop()
    assert peak == (0, 0, 0)
