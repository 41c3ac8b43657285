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
