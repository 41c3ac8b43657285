"""Markdown table text and the recall-curve PNG."""
import numpy as np

from crossfade.pipeline.quality import report


def _entry(*per_seed):
    return {"mean": float(np.mean(per_seed)), "per_seed": list(per_seed)}


RESULTS = {
    "ease": {"recall@10": _entry(0.19, 0.21), "ndcg@10": _entry(0.15, 0.15),
             "hit@10": _entry(0.4, 0.6)},
    "most-popular": {"recall@10": _entry(0.07, 0.08), "ndcg@10": _entry(0.06, 0.07),
                     "hit@10": _entry(0.6, 0.6)},
}


def test_markdown_table_rows():
    table = report.markdown_table(RESULTS, "Last.fm quality",
                                  details=["dataset: hetrec2011-lastfm-2k", "seeds: 0, 1"])
    lines = table.splitlines()
    assert lines[:5] == ["## Last.fm quality", "", "- dataset: hetrec2011-lastfm-2k",
                         "- seeds: 0, 1", ""]
    assert lines[5] == "| Method | Recall@10 | NDCG@10 | Hit@10 |"
    assert lines[6] == "|---|---|---|---|"
    # Sample std of (0.19, 0.21) is 0.01 * sqrt(2) = 0.0141; of (0.4, 0.6) 0.1414. On Hit@10
    # most-popular's mean 0.6 beats ease's 0.5, so the bold moves to its row.
    assert lines[7] == ("| ease | **0.2000** ± 0.0141 [0.1900, 0.2100] "
                        "| **0.1500** ± 0.0000 [0.1500, 0.1500] "
                        "| 0.5000 ± 0.1414 [0.4000, 0.6000] |")
    assert lines[8] == ("| most-popular | 0.0750 ± 0.0071 [0.0700, 0.0800] "
                        "| 0.0650 ± 0.0071 [0.0600, 0.0700] "
                        "| **0.6000** ± 0.0000 [0.6000, 0.6000] |")
    assert len(lines) == 9 and table.endswith("\n")


def test_markdown_table_keeps_method_order_and_handles_gaps():
    results = {"most-popular": RESULTS["most-popular"],
               "ials": {"recall@10": _entry(0.3)}}
    lines = report.markdown_table(results, "t").splitlines()
    assert lines[:2] == ["## t", ""]  # no detail bullets
    assert lines[4].startswith("| most-popular | 0.0750")
    # One seed: std 0. Missing metrics read n/a and don't affect the bolding.
    assert lines[5] == "| ials | **0.3000** ± 0.0000 [0.3000] | n/a | n/a |"
    assert "**0.0650**" in lines[4]


def test_plot_recall_curves_writes_png(tmp_path):
    path = tmp_path / "plots" / "recall.png"
    curves = {"ease": np.linspace(0.05, 0.4, 100), "most-popular": np.linspace(0.02, 0.2, 100)}
    report.plot_recall_curves(curves, str(path), "Recall@K")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
