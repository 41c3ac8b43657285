"""Hyperparameters: every field's type and range checked on construction, and on the CLI."""
import re

import pytest

from crossfade.components.trainer.hyperparameters import Hyperparameters
from crossfade.pipeline import cli


@pytest.mark.parametrize("name, value, message", [
    ("epochs", 0, "at least 1"),
    ("epochs", -3, "at least 1"),
    ("epochs", "abc", "an integer"),
    ("epochs", 2.5, "an integer"),
    ("epochs", True, "an integer"),
    ("batch_size", 0, "at least 1"),
    ("embedding_dim", 0, "at least 1"),
    ("id_embedding_dim", 0, "at least 1"),
    ("content_embedding_dim", -1, "at least 1"),
    ("hidden_units", 0, "at least 1"),
    ("max_steps", -1, "at least 0"),
    ("seed", -1, "at least 0"),
    ("temperature", 0, "greater than 0"),
    ("temperature", "warm", "a number"),
    ("learning_rate", -0.1, "greater than 0"),
    ("learning_rate", float("nan"), "a finite number"),
    ("id_dropout", 1.0, "in [0, 1)"),
    ("history_dropout", -0.1, "in [0, 1)"),
    ("artist_dropout", 1.5, "in [0, 1]"),
    ("content_loss_weight", -0.1, "at least 0"),
    ("logq_correction", 2.5, "in [0, 2]"),
    ("logq_correction", -0.1, "in [0, 2]"),
    ("use_user_id", "yes", "true or false"),
    ("time_context", 1, "true or false"),
    ("negatives", "all", "one of"),
    ("optimizer", "sgd", "one of"),
    ("history_pooling", "max", "one of"),
    ("weight_decay", -0.1, "at least 0"),
    ("index", "hnsw", "one of"),
    ("index_partitions", -1, "at least 0"),
    ("index_probe", 2.5, "an integer"),
])
def test_invalid_values_name_the_field(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        Hyperparameters(**{name: value})
    assert str(error.value).startswith(f"{name} must be")


def test_weight_decay_needs_adamw_rather_than_being_ignored():
    for optimizer in ("adagrad", "adam"):
        with pytest.raises(ValueError, match="weight_decay must be 0 unless optimizer is "
                                             "'adamw'"):
            Hyperparameters(optimizer=optimizer, weight_decay=0.01)
    assert Hyperparameters(optimizer="adamw", weight_decay=0.01).weight_decay == 0.01


def test_valid_values_and_struct_round_trip_floats():
    hp = Hyperparameters.from_dict({"epochs": 3.0, "learning_rate": 1, "max_steps": 0})
    assert hp.epochs == 3 and isinstance(hp.epochs, int)
    assert hp.learning_rate == 1.0 and isinstance(hp.learning_rate, float)
    assert Hyperparameters() == Hyperparameters.from_dict({})


@pytest.mark.parametrize("assignment", ["epochs=abc", "epochs=0", "batch_size=0",
                                        "embedding_dim=0", "epochs=-3"])
def test_cli_run_rejects_bad_set_values_before_running(tmp_path, capsys, assignment):
    data = tmp_path / "data"
    data.mkdir()
    (data / "interactions.csv").write_text("user_id,item_id\nu1,i1\n")
    code = cli.main(["run", "--data", str(data), "--output", str(tmp_path / "out"),
                     "--set", assignment])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {assignment.split('=')[0]} must be")
    assert not (tmp_path / "out").exists()


def test_cli_compile_rejects_bad_set_values(tmp_path, capsys):
    code = cli.main(["compile", "--out", str(tmp_path / "p.yaml"), "--set", "epochs=abc"])
    assert code == 2
    assert "epochs must be an integer" in capsys.readouterr().err
