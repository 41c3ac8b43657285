"""The simulate report: Markdown tables and bolding, n/a and null for NaN, files and PNGs."""
import copy
import json
import math
import os

from crossfade.pipeline.simulation import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

METRICS = [
    {"name": "stream_rate", "label": "stream rate", "higher_is_better": True, "format": ".3f"},
    {"name": "skip_rate", "label": "skip rate", "higher_is_better": False, "format": ".2f"},
]

RESULT = {
    "settings": {"data_dir": "data/sim", "users": 200, "days": 3, "k": 10, "seed": 7,
                 "long_term_effects": {"satiation": True, "discovery": False,
                                       "half_life_days": 2.5},
                 "rounds": 0},
    "metrics": METRICS,
    "policies": {
        "two-tower": {"source": "pushed model outputs/serving/crossfade/3",
                      "summary": {"stream_rate": 0.412, "skip_rate": 0.30},
                      "per_day": {"stream_rate": [0.40, 0.41, 0.426],
                                  "skip_rate": [0.31, 0.30, 0.29]}},
        "top chart": {"source": "top chart",
                      "summary": {"stream_rate": 0.250, "skip_rate": 0.20},
                      "per_day": {"stream_rate": [0.25, 0.25, 0.25],
                                  "skip_rate": [0.2, 0.2, 0.2]}},
    },
    "wall_seconds": 12.34,
}

ROUNDS = [
    {"round": 1, "effects": "off", "policy": "two-tower", "summary": {"stream_rate": 0.40,
     "skip_rate": 0.3}, "wall_seconds": 4.0, "model_version": "4"},
    {"round": 0, "effects": "on", "policy": "two-tower", "summary": {"stream_rate": 0.41,
     "skip_rate": 0.3}, "wall_seconds": 2.0, "model_version": "3"},
    {"round": 1, "effects": "on", "policy": "two-tower", "summary": {"stream_rate": 0.43,
     "skip_rate": 0.28}, "wall_seconds": 4.0, "model_version": "4"},
    {"round": 0, "effects": "off", "policy": "two-tower", "summary": {"stream_rate": 0.41,
     "skip_rate": 0.3}, "wall_seconds": 2.0, "model_version": "3"},
]

OFF_POLICY = {"logging_policy": "top chart", "estimator": "per-slot",
              "targets": [{"policy": "two-tower", "on_policy": 0.2, "ips": 0.25, "snips": 0.21,
                           "effective_sample_size": 812.34, "matched": 950,
                           "num_samples": 20000},
                          {"policy": "random", "on_policy": 0.0, "ips": 0.01, "snips": 0.02,
                           "effective_sample_size": 3.0, "matched": 4, "num_samples": 20000}]}


def _with(**changes):
    result = copy.deepcopy(RESULT)
    result.update(copy.deepcopy(changes))
    return result


def _lines_after(markdown, heading):
    lines = markdown.splitlines()
    return lines[lines.index(heading) + 1:]


def test_policy_table_rows_and_bolding_follow_each_direction():
    markdown = report.render_markdown(RESULT)
    assert markdown.startswith("# Simulated A/B test\n") and markdown.endswith("\n")
    table = _lines_after(markdown, "## Policies")[3:7]
    assert table == [
        "| Policy | Source | stream rate ↑ | skip rate ↓ |",
        "|---|---|---|---|",
        # Higher stream rate wins for two-tower, lower skip rate for the top chart.
        "| two-tower | pushed model outputs/serving/crossfade/3 | **0.412** | 0.30 |",
        "| top chart | top chart | 0.250 | **0.20** |",
    ]


def test_settings_paragraph():
    markdown = report.render_markdown(_with(settings={**RESULT["settings"], "epsilon": 0.1}))
    paragraph = markdown.splitlines()[2]
    assert paragraph == (
        "200 simulated listeners over 3 days, data `data/sim`, top-10 lists, seed 7. "
        "Long-term effects: satiation on, discovery off (half_life_days = 2.5). "
        "Closed loop: off. Other settings: epsilon = 0.1. Wall time: 12.3 s.")


def test_settings_with_nested_effects_and_dict_settings():
    settings = {**RESULT["settings"], "listening": {"patience": 3},
                "long_term_effects": {"on": {"satiation": True, "discovery": True},
                                      "off": {"satiation": False, "discovery": False,
                                              "discovery_rate": 0.05}}}
    paragraph = report.render_markdown(_with(settings=settings)).splitlines()[2]
    assert ("Long-term effects: on: satiation on, discovery on; "
            "off: satiation off, discovery off (discovery_rate = 0.05).") in paragraph
    assert "Other settings: listening = (patience = 3)." in paragraph


def test_single_policy_is_not_bold_and_ties_bold_every_row():
    single = _with(policies={"two-tower": RESULT["policies"]["two-tower"]})
    assert "**" not in report.render_markdown(single)
    tied = _with()
    tied["policies"]["top chart"]["summary"]["stream_rate"] = 0.412
    rows = _lines_after(report.render_markdown(tied), "## Policies")[5:7]
    assert all("**0.412**" in row for row in rows)


def test_nan_reads_na_is_not_bold_and_is_null_in_json(tmp_path):
    result = _with()
    result["policies"]["two-tower"]["summary"]["stream_rate"] = math.nan
    result["policies"]["top chart"]["per_day"]["skip_rate"][1] = float("nan")
    result["wall_seconds"] = math.inf
    markdown = report.render_markdown(result)
    rows = _lines_after(markdown, "## Policies")[5:7]
    # With one finite stream rate left nothing was beaten: no bold in that column.
    assert rows == ["| two-tower | pushed model outputs/serving/crossfade/3 | n/a | 0.30 |",
                    "| top chart | top chart | 0.250 | **0.20** |"]
    assert "Wall time: n/a s." in markdown

    paths = report.write_report(result, str(tmp_path))
    with open(paths["json"]) as file:
        loaded = json.load(file)
    assert loaded["policies"]["two-tower"]["summary"]["stream_rate"] is None
    assert loaded["policies"]["top chart"]["per_day"]["skip_rate"] == [0.2, None, 0.2]
    assert loaded["wall_seconds"] is None
    assert loaded["settings"]["users"] == 200
    text = open(paths["json"]).read()
    assert "NaN" not in text and "Infinity" not in text and text.startswith('{\n  "metrics"')


def test_write_report_files_and_pngs(tmp_path):
    out_dir = tmp_path / "new" / "report"  # created by write_report
    result = _with(rounds=ROUNDS, off_policy=OFF_POLICY)
    paths = report.write_report(result, str(out_dir))
    assert paths["markdown"] == str(out_dir / "report.md")
    assert paths["json"] == str(out_dir / "results.json")
    assert [os.path.basename(p) for p in paths["plots"]] == [
        "policies.png", "per_day.png", "rounds.png"]
    for path in paths["plots"]:
        with open(path, "rb") as file:
            assert file.read(8) == PNG_SIGNATURE
    assert (out_dir / "report.md").read_text() == report.render_markdown(result)
    # Atomic writes leave no temporary files behind.
    assert sorted(os.listdir(out_dir)) == [
        "per_day.png", "policies.png", "report.md", "results.json", "rounds.png"]


def test_write_plots_skips_per_day_for_one_day_and_rounds_without_rounds(tmp_path):
    one_day = _with(settings={**RESULT["settings"], "days": 1}, rounds=[])
    assert report.write_plots(one_day, str(tmp_path)) == ["policies.png"]
    assert os.listdir(tmp_path) == ["policies.png"]
    markdown = report.render_markdown(one_day)
    assert _lines_after(markdown, "## Plots") == [
        "", "- [`policies.png`](policies.png): summary metrics per policy"]


def test_rounds_and_off_policy_sections_only_when_present():
    plain = report.render_markdown(RESULT)
    assert "## Closed-loop rounds" not in plain and "## Off-policy estimates" not in plain
    assert "rounds.png" not in plain and "per_day.png" in plain
    assert "## Closed-loop rounds" not in report.render_markdown(_with(rounds=[]))
    full = report.render_markdown(_with(rounds=ROUNDS, off_policy=OFF_POLICY))
    assert "## Closed-loop rounds" in full and "## Off-policy estimates" in full
    assert "- [`rounds.png`](rounds.png)" in full


def test_rounds_tables_per_effects_setting_sorted_by_round():
    settings = {**RESULT["settings"], "rounds": 2}
    markdown = report.render_markdown(_with(settings=settings, rounds=ROUNDS))
    assert "Closed loop: 2 rounds." in markdown
    on = _lines_after(markdown, "### Long-term effects on")
    off = _lines_after(markdown, "### Long-term effects off")
    assert markdown.index("### Long-term effects on") < markdown.index(
        "### Long-term effects off")
    assert on[1:5] == [
        "| Round | Policy | Model version | stream rate ↑ | skip rate ↓ | Wall (s) |",
        "|---|---|---|---|---|---|",
        "| 0 | two-tower | 3 | 0.410 | 0.30 | 2.0 |",
        "| 1 | two-tower | 4 | 0.430 | 0.28 | 4.0 |",
    ]
    assert on[6] == "Mean wall time of a round: 3.0 s per policy (2 runs)."
    assert off[3:5] == ["| 0 | two-tower | 3 | 0.410 | 0.30 | 2.0 |",
                        "| 1 | two-tower | 4 | 0.400 | 0.30 | 4.0 |"]


def test_off_policy_table_and_relative_error():
    markdown = report.render_markdown(_with(off_policy=OFF_POLICY))
    section = _lines_after(markdown, "## Off-policy estimates")
    assert section[1].startswith("Estimated from the logs of `top chart` with the per-slot "
                                 "estimator.")
    assert section[3:7] == [
        "| Target | On-policy | IPS | SNIPS | SNIPS error | ESS | Matched / samples |",
        "|---|---|---|---|---|---|---|",
        # (0.21 - 0.2) / 0.2 = +5 %; an on-policy value of 0 has no relative error.
        "| two-tower | 0.2000 | 0.2500 | 0.2100 | +5.0% | 812.3 | 950 / 20000 |",
        "| random | 0.0000 | 0.0100 | 0.0200 | n/a | 3.0 | 4 / 20000 |",
    ]
    assert math.isclose(report._relative_error_percent(0.18, 0.2), -10.0)
    assert math.isnan(report._relative_error_percent(math.nan, 0.2))
