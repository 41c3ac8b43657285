"""Markdown table text, the recall-curve PNG and the diversity trade-off PNG."""
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


def test_beyond_accuracy_columns_follow_the_accuracy_ones_unbolded():
    results = {
        "ease": {"recall@10": _entry(0.2), "coverage@10": _entry(0.1), "ild@10": _entry(0.5)},
        "random": {"recall@10": _entry(0.01), "coverage@10": _entry(0.9),
                   "ild@10": _entry(0.9)},
    }
    lines = report.markdown_table(results, "t", row_header="Setting").splitlines()
    # Columns in METRICS order whatever the dicts' order; only those some row has.
    assert lines[2] == "| Setting | Recall@10 | ILD@10 | Coverage@10 |"
    # Higher diversity or coverage is a trade-off, not a win: no bold outside accuracy.
    assert lines[4] == "| ease | **0.2000** ± 0.0000 [0.2000] | 0.5000 ± 0.0000 [0.5000] " \
        "| 0.1000 ± 0.0000 [0.1000] |"
    assert "**" not in lines[5]


def test_plot_diversity_tradeoff_writes_png_and_skips_undefined_points(tmp_path):
    path = tmp_path / "plots" / "tradeoff.png"
    sweep = {"0": (0.31, 0.20), "0.2": (0.38, 0.19), "0.5": (0.52, 0.15)}
    references = {"ease": (0.29, 0.21), "ials": (float("nan"), 0.21)}
    report.plot_diversity_tradeoff(sweep, references, str(path), "Recall@10 vs ILD@10")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_plot_diversity_tradeoff_without_any_ild_still_writes_a_png(tmp_path):
    path = tmp_path / "tradeoff.png"
    nan = float("nan")
    report.plot_diversity_tradeoff({"0": (nan, 0.2)}, {"ease": (nan, 0.21)}, str(path), "t")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
