"""How `crossfade run` builds its configuration from the data folder and the flags."""
import json

import pytest

from crossfade.pipeline import cli, configs


def _untimed_folder(tmp_path, manifest_format=None):
    (tmp_path / "interactions.csv").write_text("user_id,item_id\nu1,i1\n")
    if manifest_format:
        (tmp_path / "manifest.json").write_text(json.dumps({"format": manifest_format}))
    return str(tmp_path)


def _config(data_dir, *flags):
    args = cli.build_parser().parse_args(["run", "--data", data_dir, "--output", data_dir,
                                          *flags])
    return cli._config(args, data_dir)


def test_imported_data_trains_with_its_dataset_hyperparameters_and_overrides(tmp_path):
    data_dir = _untimed_folder(tmp_path, "lastfm-hetrec")
    config = _config(data_dir, "--set", "epochs=3", "--split-seed", "2")
    tuned = configs.DATASET_HYPERPARAMETERS["lastfm-hetrec"]
    assert config.hyperparameters.history_dropout == tuned.history_dropout
    assert config.hyperparameters.epochs == 3
    assert config.split.seed == 2


def test_data_without_timestamps_turns_the_time_context_off(tmp_path):
    config = _config(_untimed_folder(tmp_path))
    assert config.hyperparameters.time_context is False
    assert config.hyperparameters.use_user_id is True  # product defaults otherwise


def test_unknown_hyperparameters_are_named(tmp_path):
    with pytest.raises(ValueError, match="epochz"):
        _config(_untimed_folder(tmp_path), "--set", "epochz=3")


def test_tune_flags_reach_the_config(tmp_path):
    data_dir = _untimed_folder(tmp_path)
    assert _config(data_dir).tune is False
    config = _config(data_dir, "--tune")
    assert config.tune is True and config.tune_trials == configs.DEFAULT_TUNE_TRIALS
    config = _config(data_dir, "--tune", "--tune-trials", "2")
    assert config.tune is True and config.tune_trials == 2


def test_tune_trials_without_tune_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--tune-trials needs --tune"):
        _config(_untimed_folder(tmp_path), "--tune-trials", "2")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_trial_counts_are_refused_by_the_parser(tmp_path, value, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--tune", "--tune-trials", value])
    assert "--tune-trials" in capsys.readouterr().err


def test_benchmark_quality_tunes_every_seed_with_the_flags(tmp_path, monkeypatch):
    from crossfade.pipeline.quality import benchmark
    calls = []
    monkeypatch.setattr(benchmark, "run", lambda *args, **kwargs: calls.append(kwargs))
    common = ["benchmark", "quality", "--dataset", "lastfm-hetrec", "--data-dir",
              str(tmp_path), "--out", str(tmp_path / "out")]
    assert cli.main(common + ["--tune", "--tune-trials", "3"]) == 0
    assert cli.main(common) == 0
    assert [call["pipeline_settings"] for call in calls] == [
        {"tune": True, "tune_trials": 3}, {}]
    assert cli.main(common + ["--tune-trials", "3"]) == 2  # needs --tune


def test_compile_tunes_with_the_flags(tmp_path, monkeypatch):
    from crossfade.kubeflow import runner
    compiled = []
    monkeypatch.setattr(runner, "compile_pipeline",
                        lambda config, out, *args: compiled.append(config) or out)
    monkeypatch.setenv("CROSSFADE_BUCKET", "gs://bucket")
    monkeypatch.setenv("CROSSFADE_BEAM_RUNNER", "direct")
    data_dir = _untimed_folder(tmp_path)
    assert cli.main(["compile", "--out", str(tmp_path / "spec.yaml"), "--image", "img",
                     "--data", data_dir, "--tune", "--tune-trials", "4"]) == 0
    assert compiled[0].tune is True and compiled[0].tune_trials == 4
