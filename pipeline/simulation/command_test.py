"""`crossfade simulate` end to end on a micro folder (baselines and a toy export), and the
refusals that must come before the first simulated day and write nothing."""
from __future__ import annotations

import json
import os

import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.simulator.generator import generate
from crossfade.components.simulation.experiment import SimulationSettings
from crossfade.components.simulation.simulated_data import SimulatedData
from crossfade.pipeline.simulation import command, estimate
from crossfade.serving.toy_model import save_toy_model

_MICRO = testing_simulation.MICRO
SETTINGS = SimulationSettings(users=40, days=2, k=5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("micro") / "data")
    generate(_MICRO, out, seed=3)
    return out


def test_simulate_baselines_writes_the_report(folder, tmp_path) -> None:
    out = str(tmp_path / "report")
    result = command.simulate(folder, str(tmp_path / "no-serving"), ["chart", "random"], out,
                              SETTINGS)
    assert list(result["policies"]) == ["chart", "random"]
    assert result["settings"]["first_day"] == _MICRO.num_days
    assert result["settings"]["users"] == 40 and result["settings"]["days"] == 2
    for row in result["policies"].values():
        assert 0.0 < row["summary"]["stream_rate"] < 1.0
        assert len(row["per_day"]["stream_rate"]) == 2
    assert os.path.isfile(os.path.join(out, "report.md"))
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        written = json.load(handle)
    assert set(written["policies"]) == {"chart", "random"}
    with open(os.path.join(out, "report.md"), encoding="utf-8") as handle:
        assert "| chart" in handle.read()


def test_simulate_serves_the_latest_pushed_model(folder, tmp_path) -> None:
    base = str(tmp_path / "serving" / "crossfade")
    track_ids = list(SimulatedData.load(folder).world.catalogue.track_id)
    save_toy_model(os.path.join(base, "3"), track_ids, seed=0, warmup_users=None)
    out = str(tmp_path / "report")
    result = command.simulate(folder, base, ["model", "chart"], out,
                              SimulationSettings(users=20, days=1, k=5))
    assert result["policies"]["model"]["source"] == os.path.join(base, "3")
    assert 0.0 < result["policies"]["model"]["summary"]["stream_rate"] < 1.0


def _fails(tmp_path, error_type, message, **kwargs) -> None:
    out = str(tmp_path / "report")
    arguments = {"serving_base_path": str(tmp_path / "serving" / "crossfade"),
                 "specs": ["chart"], "out_dir": out, "settings": SETTINGS} | kwargs
    with pytest.raises(error_type, match=message) as caught:
        command.simulate(**arguments)
    assert "\n" not in str(caught.value)
    assert not os.path.exists(out)


def test_unknown_policy_path(folder, tmp_path) -> None:
    missing = str(tmp_path / "exports" / "nothing")
    _fails(tmp_path, ValueError, f"policy path {missing}: no such folder", data_dir=folder,
           specs=["chart", missing])


def test_model_without_a_pushed_model(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "no pushed model under .*serving.crossfade", data_dir=folder,
           specs=["model"])


def test_rounds_zero(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "--rounds must be at least 1, not 0", data_dir=folder,
           rounds=0)


def test_estimate_with_both_long_term_settings(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "--estimate compares with one setting", data_dir=folder,
           estimate_from="random", long_term="both")


def test_rounds_with_estimate(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "separate experiments", data_dir=folder, rounds=2,
           estimate_from="random")


def test_unknown_long_term_setting(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "--long-term must be one of", data_dir=folder,
           long_term="sometimes")


def test_a_bad_policy_spec(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "unknown control 'temperature'", data_dir=folder,
           specs=["model:temperature=1"])


def test_a_policy_named_twice(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "policies named twice", data_dir=folder,
           specs=["chart", "chart"])


def test_data_not_made_by_the_simulator(tmp_path) -> None:
    data_dir = tmp_path / "imported"
    data_dir.mkdir()
    (data_dir / "interactions.csv").write_text("user_id,item_id\nu1,i1\n", encoding="utf-8")
    (data_dir / "manifest.json").write_text('{"format": "csv"}', encoding="utf-8")
    _fails(tmp_path, ValueError, "format 'csv', not 'crossfade-simulator/1'",
           data_dir=str(data_dir))


def test_default_specs_follow_the_experiment() -> None:
    assert command.default_specs(None, None) == command.DEFAULT_POLICIES
    assert command.default_specs(3, None) == command.DEFAULT_LOOP_POLICIES
    assert command.default_specs(None, "model:explore=0.2") == estimate.DEFAULT_TARGETS


def test_a_logging_policy_that_is_also_a_target(folder, tmp_path) -> None:
    _fails(tmp_path, ValueError, "--logging random is also a --policy", data_dir=folder,
           specs=["random", "chart"], estimate_from="random")


def test_estimate_writes_the_off_policy_entry(folder, tmp_path) -> None:
    out = str(tmp_path / "report")
    result = command.simulate(folder, str(tmp_path / "no-serving"), ["chart"], out,
                              SimulationSettings(users=20, days=1, k=5), estimate_from="random")
    assert result["off_policy"]["logging_policy"] == "random"
    assert [row["policy"] for row in result["off_policy"]["targets"]] == ["chart"]
    assert list(result["policies"]) == ["random", "chart"]
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        assert json.load(handle)["off_policy"]["logging_policy"] == "random"
