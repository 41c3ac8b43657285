"""Markdown and PNG rendering of quality-benchmark results.

* ``markdown_table(results, title, details, row_header)``: ``results[row][metric]`` is
  ``{"mean": float, "per_seed": [float, ...]}``. One row per entry in the dict's order, one
  column per metric that any row has, in ``METRICS`` order (recall@10, ndcg@10, hit@10, then
  the beyond-accuracy ild@10, novelty@10, coverage@10, then, where the split leaves test
  items nobody played in training, cold and warm recall@10); each cell reads
  ``mean ± std [seed values]`` to 4 decimals, where std is the sample standard deviation
  over seeds (ddof = 1; 0 for a single seed). In the accuracy columns (``BOLD_METRICS``) the
  best mean is bold (every row reaching it, on ties); beyond-accuracy columns are not bolded,
  because more diverse, novel or covering lists are a trade-off against accuracy rather than
  better (random lists maximise all three). ``details`` lines (dataset, split, seeds, tuned
  hyperparameters) are listed under the title.
* ``plot_recall_curves(curves, path, title)``: ``curves[method]`` is a ``[max_k]`` array of
  Recall@1..max_k; one line per method.
* ``plot_diversity_tradeoff(sweep, references, path, title)``: Recall@10 against ILD@10, the
  two-tower's re-ranking settings as one annotated line, other methods as reference points.

Both plots are PNGs drawn on matplotlib's Agg canvas.
"""
import os
from typing import Any, Dict, Sequence, Tuple

import numpy as np

_HEADERS = {"recall@10": "Recall@10", "ndcg@10": "NDCG@10", "hit@10": "Hit@10",
            "ild@10": "ILD@10", "novelty@10": "Novelty@10 (bits)",
            "coverage@10": "Coverage@10", "cold recall@10": "Cold Recall@10",
            "warm recall@10": "Warm Recall@10"}
METRICS = tuple(_HEADERS)
BOLD_METRICS = ("recall@10", "ndcg@10", "hit@10", "cold recall@10", "warm recall@10")
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
                   details: Sequence[str] = (), row_header: str = "Method") -> str:
    """Renders results as a Markdown section: title, detail bullets, then the table.

    Args:
      results: {row: {metric: {"mean": float, "per_seed": [float, ...]}}}; a metric a row
        lacks shows as "n/a". Metrics outside `METRICS` are not shown.
      title: section heading.
      details: extra lines shown as a bullet list under the title.
      row_header: the first column's heading.

    Returns:
      Markdown text ending with a newline.
    """
    columns = [metric for metric in METRICS
               if any(metric in entries for entries in results.values())]
    best = {}
    for metric in set(columns) & set(BOLD_METRICS):
        best[metric] = max(entries[metric]["mean"] for entries in results.values()
                           if metric in entries)
    lines = [f"## {title}", ""]
    if details:
        lines += [f"- {detail}" for detail in details] + [""]
    lines.append(f"| {row_header} | " + " | ".join(_HEADERS[m] for m in columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for row, entries in results.items():
        cells = [
            _cell(entries[metric], metric in best and entries[metric]["mean"] == best[metric])
            if metric in entries else _MISSING
            for metric in columns
        ]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure():
    # Figure + FigureCanvasAgg rather than pyplot: no global backend switch and no figure
    # registry, so this works headless and leaves callers' matplotlib state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _save(figure, path: str) -> None:
    figure.tight_layout()
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png")


def plot_recall_curves(curves: Dict[str, np.ndarray], path: str, title: str) -> None:
    """Writes a PNG of Recall@K against K (1..len(curve)), one line per method."""
    figure, axes = _figure()
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
    _save(figure, path)


Point = Tuple[float, float]  # (ILD@10, Recall@10)


def plot_diversity_tradeoff(sweep: Dict[str, Point], references: Dict[str, Point], path: str,
                            title: str, sweep_label: str = "two-tower") -> None:
    """Writes a PNG of Recall@10 (y) against ILD@10 (x).

    Args:
      sweep: {setting label: (ild, recall)}, in sweep order: drawn as one line of points,
        each annotated with its label (e.g. the diversity value).
      references: {method: (ild, recall)}: one marker each, annotated with the method.
      path: the PNG to write (folders are created).
      title: the plot's title.
      sweep_label: the legend entry of the sweep.

    Points with a non-finite coordinate (ILD is undefined without content features) are
    left out.
    """
    figure, axes = _figure()
    shown = {label: point for label, point in sweep.items() if np.all(np.isfinite(point))}
    if shown:
        points = np.array(list(shown.values()), dtype=float)
        axes.plot(points[:, 0], points[:, 1], marker="o", color="C0", label=sweep_label)
        for label, point in shown.items():
            axes.annotate(label, point, textcoords="offset points", xytext=(4, 4),
                          fontsize=8)
    for index, (method, point) in enumerate(references.items()):
        if np.all(np.isfinite(point)):  # C0 is the sweep's: references take the next colours
            axes.scatter([point[0]], [point[1]], marker="s", color=f"C{index + 1}",
                         label=method)
            axes.annotate(method, point, textcoords="offset points", xytext=(4, -10),
                          fontsize=8)
    axes.set_xlabel("ILD@10 (intra-list diversity, content)")
    axes.set_ylabel("Recall@10")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize=8)
    else:  # still written, so the report's files do not depend on the data's content
        axes.text(0.5, 0.5, "no ILD@10: the catalogue has no genres or tags",
                  ha="center", va="center", transform=axes.transAxes)
    _save(figure, path)
