"""`crossfade serve` and `crossfade recommend` argument handling and output."""
import argparse
import json

import grpc
import pytest

from crossfade.serving import batching, commands, model_server, servable, signatures
from crossfade.serving.client import Recommendations, ScoredTrack, ServingClientError


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
    assert lines[3].split() == ["rank", "track", "id", "score"]  # no titles: no columns
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


def test_serve_defaults_come_from_the_server_options():
    args = _parser().parse_args(["serve", "--model-base-path", "m"])
    defaults = model_server.ServerOptions()
    assert (args.port, args.rest_port, args.host, args.poll_seconds) == (
        defaults.grpc_port, defaults.rest_port, defaults.host, defaults.poll_seconds)
    assert (args.max_k, args.max_rows) == (servable.RequestLimits().max_k,
                                           servable.RequestLimits().max_rows)
    assert args.max_request_bytes == defaults.max_request_bytes
    assert args.max_batch_size == batching.BatchingOptions().max_batch_size


# -- recommend: the controls ------------------------------------------------------------------

TITLED = Recommendations((ScoredTrack("spotify:track:a", 0.9, "Hold On", "Tom Waits", 0.25),
                          ScoredTrack("spotify:track:bb", 0.5, "Ruby's Arms", "", 1.0)),
                         "crossfade", 17, signature_name=signatures.RECOMMEND)


class _FakeClient:
    """Records what `crossfade recommend` asks a client for."""

    def __init__(self, result=TITLED, error=None):
        self.result, self.error = result, error
        self.calls = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def recommend(self, *args, **kwargs):
        self.calls.append(("recommend", args, kwargs))
        if self.error:
            raise self.error
        return self.result

    def similar_tracks(self, *args, **kwargs):
        self.calls.append(("similar_tracks", args, kwargs))
        return self.result


@pytest.fixture
def fake_client(monkeypatch):
    from crossfade.serving import client as client_module
    fake = _FakeClient()
    connected = []

    def connect(server, protocol="grpc", **options):
        connected.append((server, protocol))
        return fake

    monkeypatch.setattr(client_module, "connect", connect)
    fake.connected = connected
    return fake


def test_recommend_passes_the_controls(fake_client, capsys):
    assert commands.main(["recommend", "--user", "u1", "--recent", "t1,t2", "-k", "2",
                          "--exclude", "x1", "--exclude", "x2,x3", "--exclude-listened",
                          "--diversity", "0.3", "--explore", "0.1", "--seed", "7",
                          "--new-releases", "14"]) == 0
    [(method, args, kwargs)] = fake_client.calls
    assert (method, args) == ("recommend", ("u1", ["t1", "t2"], 2))
    assert kwargs == {"platform": "", "exclude": ["x1", "x2", "x3"], "diversity": 0.3,
                      "explore": 0.1, "seed": 7, "exclude_listened": True,
                      "released_within_days": 14}
    assert fake_client.connected == [("127.0.0.1:8500", "grpc")]
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].split() == ["rank", "track", "id", "title", "artist", "score", "propensity"]
    assert lines[5].split() == ["1", "spotify:track:a", "Hold", "On", "Tom", "Waits", "0.9000",
                                "0.2500"]
    assert lines[6].split() == ["2", "spotify:track:bb", "Ruby's", "Arms", "0.5000", "1.0000"]
    assert lines[3].index("title") == lines[5].index("Hold")  # aligned columns


def test_recommend_defaults_are_neutral_and_hide_propensity(fake_client, capsys):
    assert commands.main(["recommend", "--user", "u1", "--protocol", "rest"]) == 0
    [(_, _, kwargs)] = fake_client.calls
    assert (kwargs["exclude"], kwargs["diversity"], kwargs["explore"], kwargs["seed"],
            kwargs["exclude_listened"], kwargs["released_within_days"]) == (
                [], 0.0, 0.0, 0, False, 0)
    assert fake_client.connected == [("127.0.0.1:8501", "rest")]  # REST's default port
    header = capsys.readouterr().out.splitlines()[3].split()
    assert header == ["rank", "track", "id", "title", "artist", "score"]


def test_recommend_json_has_titles_artists_and_propensities(fake_client, capsys):
    assert commands.main(["recommend", "--user", "u1", "--json", "--explore", "0.5"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["signature"] == signatures.RECOMMEND
    assert document["tracks"] == [
        {"track_id": "spotify:track:a", "title": "Hold On", "artist": "Tom Waits",
         "score": 0.9, "propensity": 0.25},
        {"track_id": "spotify:track:bb", "title": "Ruby's Arms", "artist": "", "score": 0.5,
         "propensity": 1.0}]


def test_an_old_model_is_noted(fake_client, capsys):
    fake_client.result = Recommendations((ScoredTrack("spotify:track:a", 0.9),), "crossfade",
                                         3, signature_name=signatures.SERVING_DEFAULT)
    assert commands.main(["recommend", "--user", "u1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[3].split() == ["rank", "track", "id", "score"]
    assert "predates the 'recommend' signature" in captured.err
    fake_client.error = ServingClientError(grpc.StatusCode.FAILED_PRECONDITION,
                                           "model 'crossfade' predates the 'recommend' "
                                           "signature")
    assert commands.main(["recommend", "--user", "u1", "--diversity", "0.2"]) == 1
    assert "FAILED_PRECONDITION: model 'crossfade' predates" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--diversity", "1.5"], ["--explore", "-0.1"],
                                   ["--diversity", "nan"], ["--explore", "lots"],
                                   ["--new-releases", "0"], ["--new-releases", "week"]])
def test_out_of_range_controls_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        commands.main(["recommend", "--user", "u1", *flags])
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_controls_do_not_apply_to_similar_tracks(fake_client, capsys):
    assert commands.main(["recommend", "--similar", "t1", "--diversity", "0.5",
                          "--exclude", "t2"]) == 2
    assert "--exclude, --diversity apply to --user" in capsys.readouterr().err
    assert fake_client.calls == []
