"""Markdown and PNG rendering of quality-benchmark results.

* ``markdown_table(results, title, details)``: ``results[method][metric]`` is
  ``{"mean": float, "per_seed": [float, ...]}``. One row per method in the dict's order,
  one column per metric (``METRICS``: recall@10, ndcg@10, hit@10); each cell reads
  ``mean ± std [seed values]`` to 4 decimals, where std is the sample standard deviation
  over seeds (ddof = 1; 0 for a single seed). The best mean of each column is bold (every
  method reaching it, on ties). ``details`` lines (dataset, split, seeds, tuned
  hyperparameters) are listed under the title.
* ``plot_recall_curves(curves, path, title)``: ``curves[method]`` is a ``[max_k]`` array of
  Recall@1..max_k; one line per method, written as a PNG with matplotlib's Agg canvas.
"""
import os
from typing import Any, Dict, Sequence

import numpy as np

METRICS = ("recall@10", "ndcg@10", "hit@10")
_HEADERS = {"recall@10": "Recall@10", "ndcg@10": "NDCG@10", "hit@10": "Hit@10"}
_MISSING = "n/a"


def _std(values: Sequence[float]) -> float:
    # Sample std: the seeds are a sample of splits, and one seed has no spread to report.
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _cell(entry: Dict[str, Any], best: bool) -> str:
    mean = f"{entry['mean']:.4f}"
    if best:
        mean = f"**{mean}**"
    seeds = ", ".join(f"{value:.4f}" for value in entry["per_seed"])
    return f"{mean} ± {_std(entry['per_seed']):.4f} [{seeds}]"


def markdown_table(results: Dict[str, Dict[str, Dict[str, Any]]], title: str,
                   details: Sequence[str] = ()) -> str:
    """Renders results as a Markdown section: title, detail bullets, then the table.

    Args:
      results: {method: {metric: {"mean": float, "per_seed": [float, ...]}}}; a metric a
        method lacks shows as "n/a".
      title: section heading.
      details: extra lines shown as a bullet list under the title.

    Returns:
      Markdown text ending with a newline.
    """
    best = {}
    for metric in METRICS:
        means = [entries[metric]["mean"] for entries in results.values() if metric in entries]
        if means:
            best[metric] = max(means)
    lines = [f"## {title}", ""]
    if details:
        lines += [f"- {detail}" for detail in details] + [""]
    lines.append("| Method | " + " | ".join(_HEADERS[metric] for metric in METRICS) + " |")
    lines.append("|---" * (len(METRICS) + 1) + "|")
    for method, entries in results.items():
        cells = [
            _cell(entries[metric], entries[metric]["mean"] == best[metric])
            if metric in entries else _MISSING
            for metric in METRICS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_recall_curves(curves: Dict[str, np.ndarray], path: str, title: str) -> None:
    """Writes a PNG of Recall@K against K (1..len(curve)), one line per method."""
    # Figure + FigureCanvasAgg rather than pyplot: no global backend switch and no figure
    # registry, so this works headless and leaves callers' matplotlib state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for method, curve in curves.items():
        curve = np.asarray(curve, dtype=float)
        axes.plot(np.arange(1, len(curve) + 1), curve, label=method)
    axes.set_xlabel("K")
    axes.set_ylabel("Recall@K")
    axes.set_title(title)
    axes.set_xlim(left=1)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png")
