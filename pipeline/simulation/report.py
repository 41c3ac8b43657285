"""The report of `crossfade simulate`: Markdown, JSON and PNGs of a simulated A/B test.

Input: one JSON-able dict ``result``::

    {"settings": {"data_dir", "users", "days", "k", "seed", "rounds" (0 = no closed loop),
                  "long_term_effects": {"satiation": bool, "discovery": bool, <parameters>},
                  <other settings>},
     "metrics": [{"name", "label", "higher_is_better", "format"}, ...],  # column order
     "policies": {name: {"source": str, "summary": {metric: float},
                         "per_day": {metric: [float per simulated day]}}},
     "rounds": [{"round", "effects": "on" | "off", "policy", "summary": {metric: float},
                 "wall_seconds", "model_version"}, ...],           # optional, may be []
     "off_policy": {"logging_policy", "estimator",
                    "targets": [{"policy", "on_policy", "ips", "snips",
                                 "effective_sample_size", "matched", "num_samples"}]},  # optional
     "wall_seconds": float}

A metric's ``label`` defaults to its name, ``higher_is_better`` to true, ``format`` to ".3f".
Any float may be NaN (or missing): it reads "n/a" in the Markdown and is null in the JSON.

* ``render_markdown(result)``: title; a settings paragraph (``long_term_effects`` may also
  nest one such dict per effects label, {"on": {...}, "off": {...}}); the policy x metric
  table (with more than one policy, the best finite value per metric is bold, every policy
  reaching it on ties, in the metric's direction); if there are rounds, one table per
  effects setting ("on" first, then "off") with a row per (round, policy) and the mean wall
  time of a run; if there are off-policy estimates, a table of each target's on-policy
  value, IPS, SNIPS, the signed relative error of SNIPS against the on-policy value, 100
  (SNIPS - on) / on in % ("n/a" when on = 0), the effective sample size and matched / logged
  samples; last, the list of plots.
* ``write_plots(result, out_dir)``: ``policies.png`` (a bar subplot per metric),
  ``per_day.png`` (a line per policy over simulated days; only when days > 1) and
  ``rounds.png`` (a line per policy over rounds, solid for effects "on", dashed for "off";
  only with rounds). No metrics, no plots. Returns the names written, relative to out_dir.
* ``write_report(result, out_dir)``: creates out_dir and writes the plots, ``results.json``
  (``result`` with non-finite floats as null; indent 2, sorted keys) and ``report.md``, each
  atomically (a temporary file in out_dir, then ``os.replace``), Markdown last, so a report.md
  on disk always comes with its plots. Returns {"markdown": path, "json": path, "plots": [path]}.

PNGs are drawn on matplotlib's Agg canvas at 110 dpi.
"""
import io
import json
import math
import os
import tempfile
from typing import Any, Iterable

import numpy as np

_MISSING = "n/a"
_DPI = 110
_EFFECTS_ORDER = ("on", "off")
_LINESTYLES = {"on": "-", "off": "--"}  # any other effects value is dotted


# -- values -----------------------------------------------------------------------------------

def _finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing, NaN, infinite or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any, spec: str) -> str:
    number = _finite(value)
    return _MISSING if number is None else format(number, spec)


def _text(value: Any) -> str:
    # A "|" inside a cell would split it into two columns.
    return str(value).replace("|", "\\|")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy types as Python ones and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite(value)
    return value


def _metrics(result: dict) -> list[dict]:
    return [{"name": metric["name"], "label": metric.get("label", metric["name"]),
             "higher_is_better": bool(metric.get("higher_is_better", True)),
             "format": metric.get("format", ".3f")}
            for metric in result.get("metrics", [])]


def _relative_error_percent(estimate: Any, truth: Any) -> float:
    """100 (estimate - truth) / truth; NaN when either is missing or truth is 0."""
    estimate, truth = _finite(estimate), _finite(truth)
    if estimate is None or truth is None or truth == 0:
        return math.nan
    return 100.0 * (estimate - truth) / truth


def _best(values: Iterable[Any], higher_is_better: bool) -> float | None:
    # Fewer than two finite values: nothing was beaten, so nothing is bold.
    finite = [number for number in map(_finite, values) if number is not None]
    if len(finite) < 2:
        return None
    return max(finite) if higher_is_better else min(finite)


def _days(result: dict) -> int:
    days = _finite(result.get("settings", {}).get("days"))
    if days is not None:
        return int(days)
    lengths = [len(series) for policy in result.get("policies", {}).values()
               for series in policy.get("per_day", {}).values()]
    return max(lengths, default=0)


def _rounds_by_effects(result: dict) -> dict[str, list[dict]]:
    """Round entries per effects setting, "on" then "off" then others, each sorted by round."""
    groups: dict[str, list[dict]] = {}
    for entry in result.get("rounds") or []:
        groups.setdefault(str(entry.get("effects", _MISSING)), []).append(entry)
    order = [e for e in _EFFECTS_ORDER if e in groups] + [
        e for e in groups if e not in _EFFECTS_ORDER]
    # Stable sort: entries of one round keep their policy order.
    return {effects: sorted(groups[effects], key=lambda entry: entry.get("round", 0))
            for effects in order}


def _plot_names(result: dict) -> list[str]:
    """The plots `write_plots` draws for this result; the Markdown lists the same."""
    if not result.get("metrics") or not result.get("policies"):
        return []
    names = ["policies.png"]
    if _days(result) > 1:
        names.append("per_day.png")
    if result.get("rounds"):
        names.append("rounds.png")
    return names


# -- markdown ---------------------------------------------------------------------------------

def _effects_text(effects: dict) -> str:
    # `crossfade simulate --long-term both` nests one effects dict per label ("on", "off").
    if any(isinstance(value, dict) for value in effects.values()):
        return "; ".join(f"{label}: " + (_effects_text(value) if isinstance(value, dict)
                                         else _setting(value))
                         for label, value in effects.items())
    switches = [f"{name} {'on' if value else 'off'}" for name, value in effects.items()
                if isinstance(value, bool)]
    parameters = [f"{name} = {_setting(value)}" for name, value in effects.items()
                  if not isinstance(value, bool)]
    text = ", ".join(switches) if switches else "none"
    return text + (f" ({', '.join(parameters)})" if parameters else "")


def _setting(value: Any) -> str:
    if isinstance(value, dict):  # e.g. the listening model's parameters
        return "(" + ", ".join(f"{key} = {_setting(item)}" for key, item in value.items()) + ")"
    if isinstance(value, (float, np.floating)):
        return _fmt(value, "g")
    return str(value)


def _settings_section(result: dict) -> list[str]:
    settings = result.get("settings", {})

    def get(key: str) -> str:
        return _setting(settings.get(key, _MISSING))

    rounds = int(_finite(settings.get("rounds")) or 0)
    loop = (f"Closed loop: {rounds} rounds." if rounds > 0 else "Closed loop: off.")
    shown = {"data_dir", "users", "days", "k", "seed", "long_term_effects", "rounds"}
    others = [f"{key} = {_setting(settings[key])}" for key in sorted(settings)
              if key not in shown]
    paragraph = (f"{get('users')} simulated listeners over {get('days')} days, data "
                 f"`{get('data_dir')}`, top-{get('k')} lists, seed {get('seed')}. "
                 f"Long-term effects: {_effects_text(settings.get('long_term_effects', {}))}. "
                 f"{loop}")
    if others:
        paragraph += f" Other settings: {', '.join(others)}."
    paragraph += f" Wall time: {_fmt(result.get('wall_seconds'), '.1f')} s."
    return [paragraph, ""]


def _header(metric: dict) -> str:
    return f"{metric['label']} {'↑' if metric['higher_is_better'] else '↓'}"


def _policies_section(result: dict) -> list[str]:
    metrics, policies = _metrics(result), result.get("policies", {})
    best = {}
    if len(policies) > 1:
        best = {metric["name"]: _best(
            (policy.get("summary", {}).get(metric["name"]) for policy in policies.values()),
            metric["higher_is_better"]) for metric in metrics}
    lines = ["## Policies", "",
             "↑ higher is better, ↓ lower is better; the best value per metric is bold.", "",
             "| Policy | Source | " + " | ".join(_header(m) for m in metrics) + " |",
             "|---" * (len(metrics) + 2) + "|"]
    for name, policy in policies.items():
        cells = []
        for metric in metrics:
            value = policy.get("summary", {}).get(metric["name"])
            cell = _fmt(value, metric["format"])
            top = best.get(metric["name"])
            if top is not None and _finite(value) == top:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {_text(name)} | {_text(policy.get('source', _MISSING))} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def _rounds_section(result: dict) -> list[str]:
    metrics = _metrics(result)
    lines = ["## Closed-loop rounds", ""]
    for effects, entries in _rounds_by_effects(result).items():
        lines += [f"### Long-term effects {effects}", "",
                  "| Round | Policy | Model version | "
                  + " | ".join(_header(m) for m in metrics) + " | Wall (s) |",
                  "|---" * (len(metrics) + 4) + "|"]
        for entry in entries:
            summary = entry.get("summary", {})
            cells = [_fmt(summary.get(m["name"]), m["format"]) for m in metrics]
            lines.append(f"| {_text(entry.get('round', _MISSING))} "
                         f"| {_text(entry.get('policy', _MISSING))} "
                         f"| {_text(entry.get('model_version', _MISSING))} | "
                         + " | ".join(cells)
                         + f" | {_fmt(entry.get('wall_seconds'), '.1f')} |")
        walls = [w for w in (_finite(e.get("wall_seconds")) for e in entries) if w is not None]
        mean_wall = float(np.mean(walls)) if walls else math.nan
        lines += ["", f"Mean wall time of a round: {_fmt(mean_wall, '.1f')} s per policy "
                      f"({len(walls)} runs).", ""]
    return lines


def _off_policy_section(off_policy: dict) -> list[str]:
    lines = ["## Off-policy estimates", "",
             f"Estimated from the logs of `{_text(off_policy.get('logging_policy', _MISSING))}` "
             f"with the {_text(off_policy.get('estimator', _MISSING))} estimator. The on-policy "
             "value is the target's own simulated value; the SNIPS error is "
             "100 (SNIPS - on-policy) / on-policy.", "",
             "| Target | On-policy | IPS | SNIPS | SNIPS error | ESS | Matched / samples |",
             "|---|---|---|---|---|---|---|"]
    for target in off_policy.get("targets", []):
        error = _relative_error_percent(target.get("snips"), target.get("on_policy"))
        lines.append(
            f"| {_text(target.get('policy', _MISSING))} | {_fmt(target.get('on_policy'), '.4f')}"
            f" | {_fmt(target.get('ips'), '.4f')} | {_fmt(target.get('snips'), '.4f')}"
            f" | {_MISSING if math.isnan(error) else f'{error:+.1f}%'}"
            f" | {_fmt(target.get('effective_sample_size'), '.1f')}"
            f" | {_fmt(target.get('matched'), '.0f')} / {_fmt(target.get('num_samples'), '.0f')} |")
    return lines + [""]


_PLOT_CAPTIONS = {
    "policies.png": "summary metrics per policy",
    "per_day.png": "metrics per simulated day, a line per policy",
    "rounds.png": "metrics per closed-loop round (solid: effects on, dashed: off)",
}


def render_markdown(result: dict) -> str:
    """The report as Markdown text ending with a newline (see the module docstring)."""
    lines = ["# Simulated A/B test", ""] + _settings_section(result) + _policies_section(result)
    if result.get("rounds"):
        lines += _rounds_section(result)
    if result.get("off_policy"):
        lines += _off_policy_section(result["off_policy"])
    names = _plot_names(result)
    lines += ["## Plots", ""]
    lines += [f"- [`{name}`]({name}): {_PLOT_CAPTIONS[name]}" for name in names] or ["none"]
    return "\n".join(lines) + "\n"


# -- plots ------------------------------------------------------------------------------------

def _grid(count: int):
    # Figure + FigureCanvasAgg rather than pyplot (as in crossfade.pipeline.quality.report): no
    # global backend switch and no figure registry, so nothing is left open to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[count:]:
        unused.set_visible(False)
    return figure, axes[:count]


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # days and rounds: no "0.5"


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    figure.clear()  # drop the artists now: a long run writes many reports
    return buffer.getvalue()


def _series(values: Iterable[Any]) -> np.ndarray:
    # NaN leaves a gap in a line instead of failing the plot.
    return np.array([math.nan if _finite(v) is None else _finite(v) for v in values], float)


def _policies_png(result: dict) -> bytes:
    metrics, policies = _metrics(result), result["policies"]
    figure, axes = _grid(len(metrics))
    names = list(policies)
    for ax, metric in zip(axes, metrics, strict=True):
        heights = _series(policies[n].get("summary", {}).get(metric["name"]) for n in names)
        shown = np.isfinite(heights)  # a NaN bar is left out, its tick stays
        ax.bar(np.flatnonzero(shown), heights[shown],
               color=[f"C{i}" for i in np.flatnonzero(shown)])
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(_header(metric), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    return _png(figure)


def _style_line_axes(ax, metric: dict, x_label: str) -> None:
    ax.set_title(_header(metric), fontsize=9)
    ax.set_xlabel(x_label, fontsize=8)
    _integer_ticks(ax)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)


def _legend_and_png(figure, axes, fontsize: int) -> bytes:
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=fontsize)
    return _png(figure)


def _per_day_png(result: dict) -> bytes:
    metrics, policies = _metrics(result), result["policies"]
    figure, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for index, (name, policy) in enumerate(policies.items()):
            values = _series(policy.get("per_day", {}).get(metric["name"], []))
            if len(values):
                ax.plot(np.arange(1, len(values) + 1), values, color=f"C{index}", label=name)
        _style_line_axes(ax, metric, "day")
    return _legend_and_png(figure, axes, fontsize=7)


def _rounds_png(result: dict) -> bytes:
    metrics = _metrics(result)
    colours = {name: f"C{i}" for i, name in enumerate(result.get("policies", {}))}
    figure, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for effects, entries in _rounds_by_effects(result).items():
            lines: dict[str, list[dict]] = {}
            for entry in entries:
                lines.setdefault(str(entry.get("policy", _MISSING)), []).append(entry)
            for policy, points in lines.items():
                colour = colours.setdefault(policy, f"C{len(colours)}")
                ax.plot(_series(p.get("round") for p in points),
                        _series(p.get("summary", {}).get(metric["name"]) for p in points),
                        color=colour, linestyle=_LINESTYLES.get(effects, ":"), marker="o",
                        markersize=3, label=f"{policy} (effects {effects})")
        _style_line_axes(ax, metric, "round")
    return _legend_and_png(figure, axes, fontsize=6)


_PLOTTERS = {"policies.png": _policies_png, "per_day.png": _per_day_png,
             "rounds.png": _rounds_png}


# -- files ------------------------------------------------------------------------------------

def _write_atomic(path: str, data: bytes) -> None:
    """Writes via a temporary file in the same folder: os.replace is atomic there."""
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                                         dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would make the report owner-only
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_plots(result: dict, out_dir: str) -> list[str]:
    """Writes the PNGs the result calls for into out_dir; returns their names."""
    os.makedirs(out_dir, exist_ok=True)
    names = _plot_names(result)
    for name in names:
        _write_atomic(os.path.join(out_dir, name), _PLOTTERS[name](result))
    return names


def write_report(result: dict, out_dir: str) -> dict[str, str | list[str]]:
    """Writes plots, results.json and report.md into out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    plots = [os.path.join(out_dir, name) for name in write_plots(result, out_dir)]
    json_path = os.path.join(out_dir, "results.json")
    text = json.dumps(_jsonable(result), indent=2, sort_keys=True, allow_nan=False) + "\n"
    _write_atomic(json_path, text.encode("utf-8"))
    # Markdown last: it links the plots, so it must not exist without them.
    markdown_path = os.path.join(out_dir, "report.md")
    _write_atomic(markdown_path, render_markdown(result).encode("utf-8"))
    return {"markdown": markdown_path, "json": json_path, "plots": plots}
