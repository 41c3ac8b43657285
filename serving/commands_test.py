"""`crossfade serve` and `crossfade recommend` argument handling and output."""
import argparse

from crossfade.serving import commands
from crossfade.serving.client import Recommendations, ScoredTrack


def _parser():
    parser = argparse.ArgumentParser(prog="crossfade")
    commands.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_commands_register_with_handlers_and_tf_serving_defaults():
    parser = _parser()
    serve = parser.parse_args(["serve", "--model-base-path", "/models/crossfade"])
    assert serve.handler is commands._serve
    assert (serve.port, serve.rest_port, serve.host, serve.model_name) == \
        (8500, 8501, "127.0.0.1", "crossfade")
    recommend = parser.parse_args(["recommend", "--server", "h:1", "--user", "u", "-k", "7",
                                   "--label", "canary"])
    assert recommend.handler is commands._recommend
    assert (recommend.server, recommend.user, recommend.k, recommend.label) == \
        ("h:1", "u", 7, "canary")
    similar = parser.parse_args(["recommend", "--similar", "t1"])
    assert similar.similar == "t1" and similar.user is None


def test_serve_without_models_is_a_usage_error(capsys):
    assert commands.main(["serve"]) == 2
    assert "--model-base-path" in capsys.readouterr().err


def test_recommend_without_a_server_fails_cleanly(capsys):
    import portpicker
    port = portpicker.pick_unused_port()
    assert commands.main(["recommend", "--server", f"127.0.0.1:{port}", "--user", "u",
                          "--timeout", "0.5"]) == 1
    assert "error: " in capsys.readouterr().err


def test_render_table():
    result = Recommendations((ScoredTrack("spotify:track:a", 0.91234),
                              ScoredTrack("spotify:track:bb", -0.5)), "crossfade", 17)
    args = argparse.Namespace(similar=None, user="u1", label=None, protocol="grpc",
                              server="127.0.0.1:8500")
    lines = commands.render_table(result, args, 3.21).splitlines()
    assert lines[0] == "Top 2 recommendations for user 'u1'"
    assert lines[1] == "model 'crossfade' version 17 via grpc 127.0.0.1:8500 in 3.2 ms"
    assert lines[3].split() == ["rank", "track", "id", "score"]
    assert lines[5].split() == ["1", "spotify:track:a", "0.9123"]
    assert lines[6].split() == ["2", "spotify:track:bb", "-0.5000"]


def test_serve_takes_tf_serving_load_retry_flags():
    parser = _parser()
    default = parser.parse_args(["serve", "--model-base-path", "m"])
    assert (default.max_num_load_retries, default.load_retry_interval_micros) == \
        (5, 60_000_000)
    args = parser.parse_args(["serve", "--model-base-path", "m", "--max_num_load_retries",
                              "2", "--load_retry_interval_micros", "500000"])
    assert (args.max_num_load_retries, args.load_retry_interval_micros) == (2, 500_000)
