"""`crossfade benchmark quality` on a small slice of the real Last.fm HetRec 2011 data, and
`crossfade import` from the command line.

The benchmark test runs the real pipeline once (one seed, the first 120 users, 2 epochs,
diversity settings 0 and 0.3, 5 % of the artists held out as cold items: about two minutes
on 2 cores) and checks the report's structure,
the split it used and that the served `recommend` path agrees with full-sort scoring at
diversity 0; the numbers themselves are the benchmark's business (README.md, "Quality
benchmark").
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from crossfade.components.example_gen import split_protocols
from crossfade.pipeline import configs, run_summary
from crossfade.pipeline.quality import benchmark

REPO = pathlib.Path(__file__).resolve().parents[1]
LASTFM_DIR = os.environ.get(
    "CROSSFADE_LASTFM_DIR", str(REPO.parent / "shared" / "datasets" / "hetrec2011-lastfm-2k"))
SLICE_USERS = 120
DIVERSITIES = ("0", "0.3")
COLD_ITEMS = 0.05


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "crossfade.pipeline.cli", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=900)


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    if not os.path.exists(os.path.join(LASTFM_DIR, "user_artists.dat")):
        pytest.skip(f"HetRec Last.fm 2k data not found at {LASTFM_DIR} (set "
                    "CROSSFADE_LASTFM_DIR to run the benchmark on real data)")
    out = tmp_path_factory.mktemp("quality")
    summary_json = out / "summary.json"
    result = _cli("benchmark", "quality", "--dataset", "lastfm-hetrec", "--data-dir",
                  LASTFM_DIR, "--seeds", "1", "--max-users", str(SLICE_USERS), "--out",
                  str(out), "--json", str(summary_json), "--set", "epochs=2",
                  "--diversity", ",".join(DIVERSITIES), "--cold-items", str(COLD_ITEMS))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, summary_json, result.stdout


def test_json_maps_every_method_to_mean_and_per_seed_metrics(slice_run):
    _, summary_json, _ = slice_run
    summary = json.loads(summary_json.read_text())
    assert list(summary) == list(benchmark.METHODS)  # iALS installs here: all six
    for method, metrics in summary.items():
        # HetRec artists carry tags, so ILD is defined for every method; the held-out
        # artists give cold test items.
        assert set(metrics) == set(benchmark.METRICS + benchmark.COLD_METRICS), method
        for name, values in metrics.items():
            assert len(values["per_seed"]) == 1
            assert values["mean"] == pytest.approx(values["per_seed"][0])
            if name not in ("novelty@10", "cold test items"):  # bits and a count
                assert 0.0 <= values["mean"] <= 1.0
        # Hit@10 >= Recall@10 for every user, so also on average.
        assert metrics["hit@10"]["mean"] >= metrics["recall@10"]["mean"]
        assert metrics["novelty@10"]["mean"] > 0 and metrics["coverage@10"]["mean"] > 0
    # On real data the collaborative baselines beat popularity.
    assert summary["ease"]["recall@10"]["mean"] > summary["most-popular"]["recall@10"]["mean"]


def test_report_table_plot_and_recorded_split(slice_run):
    out, _, stdout = slice_run
    table = (out / "quality.md").read_text()
    assert "| two-tower |" in table and "| ease |" in table
    assert "random 8:1:1 per user" in table  # the protocol is recorded with the results
    assert "5% of items cold (test only)" in table
    assert "| Method |" in stdout  # and printed
    assert (out / "recall_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "diversity_tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| diversity 0.3 |" in table and "| user id alone |" in table
    details = json.loads((out / "results.json").read_text())["_meta"]
    assert details["split"].startswith("random 8:1:1")
    curves = details["recall_curves"]
    assert set(curves) == set(benchmark.METHODS)
    for curve in curves.values():
        assert len(curve) == benchmark.CURVE_MAX_K
        assert np.all(np.diff(curve) >= -1e-12)  # Recall@K never falls as K grows


def test_recommend_sweep_and_stored_history_results(slice_run):
    out, summary_json, _ = slice_run
    results = json.loads((out / "results.json").read_text())
    two_tower = json.loads(summary_json.read_text())[benchmark.TWO_TOWER]
    sweep = results["_diversity"]
    assert list(sweep) == list(DIVERSITIES)
    for setting in sweep.values():
        assert set(benchmark.METRICS) <= set(setting)
    # With train and eval items sent as exclusions, `recommend` at diversity 0 is the
    # full-sort ranking: only float ties (numpy vs TensorFlow matmul) may differ, which is
    # far less than one user's hit.
    gap = sweep["0"][benchmark.FULL_SORT_GAP]["per_seed"][0]
    assert abs(gap) < 0.5 / SLICE_USERS
    assert sweep["0"]["recall@10"]["mean"] == pytest.approx(two_tower["recall@10"]["mean"],
                                                            abs=0.5 / SLICE_USERS)
    # Re-ranking for diversity raises ILD@10.
    assert sweep["0.3"]["ild@10"]["mean"] > sweep["0"]["ild@10"]["mean"]
    history = results["_stored_history"]
    assert history[benchmark.WITH_HISTORY]["recall@10"]["mean"] == pytest.approx(
        two_tower["recall@10"]["mean"])
    ratio = history[benchmark.HISTORY_RATIO]
    assert ratio["target"] == benchmark.HISTORY_RATIO_TARGET
    assert ratio["mean"] == pytest.approx(
        history[benchmark.USER_ID_ALONE]["recall@10"]["mean"]
        / history[benchmark.WITH_HISTORY]["recall@10"]["mean"])


def test_the_pipeline_split_is_disjoint_per_user_and_8_1_1_with_cold_items_test_only(
        slice_run):
    out, _, _ = slice_run
    config = configs.PipelineConfig(data_dir="", output_dir=str(out / "seed-0"))
    run = run_summary.latest_run(config)
    matrices = benchmark.split_matrices(run.artifact_uris["StreamQualifier/Examples"],
                                        run.artifact_uris["CatalogueExampleGen/Examples"])
    assert len(matrices.users) == SLICE_USERS
    train, evaluation, test = matrices.train, matrices.eval, matrices.test
    assert train.multiply(evaluation).nnz == 0 and train.multiply(test).nnz == 0
    assert evaluation.multiply(test).nnz == 0
    items = np.array([item.decode() for item in matrices.items], dtype=object)
    cold = split_protocols.cold_item_rows(items, COLD_ITEMS, seed=0)
    assert train[:, cold].nnz == 0 and evaluation[:, cold].nnz == 0 and test[:, cold].nnz > 0
    warm = ~cold
    train, evaluation, test = train[:, warm], evaluation[:, warm], test[:, warm]
    total = train.nnz + evaluation.nnz + test.nnz
    assert train.nnz / total == pytest.approx(0.8, abs=0.02)
    assert test.nnz / total == pytest.approx(0.1, abs=0.02)
    # Every user with test plays has a query (from a test play) for the two-tower model.
    users_with_test = np.flatnonzero(np.diff(matrices.test.indptr) > 0)
    assert sorted(matrices.queries["test"]["row"]) == users_with_test.tolist()
    assert len(users_with_test) >= SLICE_USERS - 2  # only users with a single play have none


def test_import_command_reports_bad_input_and_writes_nothing(tmp_path):
    source = tmp_path / "export"
    source.mkdir()
    (source / "Streaming_History_Audio_2023.json").write_text('[{"ts": "yesterday"}]')
    out = tmp_path / "imported"
    result = _cli("import", "--format", "spotify-history", "--source", str(source),
                  "--out", str(out))
    assert result.returncode == 2
    assert "Streaming_History_Audio_2023.json" in result.stderr
    assert "'ts'" in result.stderr or "ts" in result.stderr
    assert not out.exists()


def test_benchmark_on_a_spotify_export_uses_the_time_split(tmp_path):
    """Spotify JSON (written from simulated plays, with the personal fields a real export
    has) -> import -> time split with an eval and a test period -> every method."""
    import glob

    import pandas as pd

    from crossfade.components.listening_data.simulator import generator
    simulated = tmp_path / "simulated"
    generator.generate("tiny", str(simulated), seed=1)
    export = tmp_path / "export"
    export.mkdir()
    for number, path in enumerate(sorted(glob.glob(str(simulated / "plays" / "*" / "*.csv")))):
        plays = pd.read_csv(path, dtype=str, keep_default_na=False)
        records = plays.to_dict(orient="records")
        for record in records:
            record["ms_played"] = int(record["ms_played"])
            for flag in ("shuffle", "skipped", "offline"):
                record[flag] = record[flag] == "true"
            record["ip_addr"] = "203.0.113.7"
            record["user_agent_decrypted"] = "unknown"
        (export / f"Streaming_History_Audio_{number}.json").write_text(json.dumps(records))
    out = tmp_path / "quality"
    result = _cli("benchmark", "quality", "--dataset", "spotify-history", "--data-dir",
                  str(export), "--seeds", "1", "--eval-days", "2", "--out", str(out),
                  "--json", str(out / "summary.json"), "--set", "epochs=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "time (eval: 2 day(s) before the end, test: last 2 day(s))" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    # A Spotify export has no genres or tags: every method but the content baseline.
    assert set(summary) == set(benchmark.METHODS) - {"content-knn"}
    assert summary["two-tower"]["recall@10"]["mean"] > summary["most-popular"]["recall@10"][
        "mean"]
    results = (out / "results.json").read_text()
    # Neither the pseudonym key nor where it is kept goes into shareable results.
    assert "pseudonym_key" not in results and ".pseudonym-key" not in results
    for path in glob.glob(str(out / "data" / "**" / "*"), recursive=True):
        if os.path.isfile(path):
            assert b"203.0.113.7" not in open(path, "rb").read(), path
