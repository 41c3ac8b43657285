"""Editing code that runs inside a component re-runs it; editing other code reuses the cache.

The pipeline runs three times, with caching on, from a temporary copy of the crossfade package
(put first on PYTHONPATH, so the subprocess imports `crossfade.*` from the copy, not from this
checkout): a first run; a run after editing `pipeline/cli.py`, which no component runs, where
every step is reused; and a run after editing `serving/warmup.py`, which only the Trainer's
export runs (it writes the warmup requests), where the Trainer runs again. About three minutes
on 2 cores (`tiny` data, one epoch). The runs' temp folder must hold no TFX package build after.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
from package_sources import product_folders

from crossfade.components.listening_data.simulator import generator
from crossfade.pipeline import code_version, import_graph

TRAINER = "CatalogueTrainer"
UP_TO_TRAINER = ("PlaysExampleGen", "CatalogueExampleGen", "StreamQualifier", "Transform",
                 TRAINER)
_RUN = """
import json, sys
import crossfade.pipeline.import_graph as import_graph
from crossfade.pipeline import local_runner, run_summary
from crossfade.pipeline.configs import PipelineConfig
config = PipelineConfig(data_dir=sys.argv[1], output_dir=sys.argv[2]).with_hyperparameters(
    epochs=1, batch_size=1024)
local_runner.run(config)
print(json.dumps({"package_root": import_graph.PACKAGE_ROOT,
                  "states": run_summary.latest_run(config).component_states}))
"""


def _copy_package(site: str) -> str:
    """Copies the installed product folders to `site`/crossfade/; returns that folder."""
    package = os.path.join(site, "crossfade")
    for folder in product_folders():
        shutil.copytree(os.path.join(import_graph.PACKAGE_ROOT, folder),
                        os.path.join(package, folder),
                        ignore=shutil.ignore_patterns("__pycache__", "*_test.py"))
    return package


def _run(site: str, data_dir: str, output_dir: str) -> dict:
    # Each run's temp folder is kept apart, to see what the runs leave in it.
    env = {**os.environ, "PYTHONPATH": site, "TF_USE_LEGACY_KERAS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": _temp_folder(site)}
    result = subprocess.run([sys.executable, "-c", _RUN, data_dir, output_dir], env=env,
                            cwd=site, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _temp_folder(site: str) -> str:
    folder = os.path.join(os.path.dirname(site), "tmp")
    os.makedirs(folder, exist_ok=True)
    return folder


def _append(path: str, line: str) -> None:
    with open(path, "a") as handle:
        handle.write(line)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("fingerprint")
    site = str(root / "site")
    package = _copy_package(site)
    data_dir = str(root / "data")
    generator.generate("tiny", data_dir, seed=0)
    return package, site, data_dir, str(root / "output")


def test_the_copy_is_what_runs_and_fingerprints_cover_serving_code(workspace):
    package, site, data_dir, output_dir = workspace
    first = _run(site, data_dir, output_dir)
    assert first["package_root"] == package
    assert first["states"][TRAINER] == "COMPLETE"

    _append(os.path.join(package, "pipeline", "cli.py"), "\n# edited outside any component\n")
    reused = _run(site, data_dir, output_dir)
    assert reused["states"][TRAINER] == "CACHED"
    # Everything up to the Trainer is reused. (The Evaluator runs again regardless: the model
    # the first run blessed is now its baseline, a new input.)
    assert {reused["states"][node] for node in UP_TO_TRAINER} == {"CACHED"}, reused["states"]

    _append(os.path.join(package, "serving", "warmup.py"), "\n# edited: the Trainer runs this\n")
    edited = _run(site, data_dir, output_dir)
    assert edited["states"][TRAINER] == "COMPLETE"

    # TFX builds a 49 MB tfx_ephemeral sdist per Beam component run unless told not to.
    left = [os.path.join(folder, name) for folder, names, files in os.walk(_temp_folder(site))
            for name in names + files if "tfx_ephemeral" in name]
    assert not left, left[:3]


def test_code_files_follow_imports_out_of_components():
    files = code_version.code_files()
    assert "serving/warmup.py" in files and "serving/signatures.py" in files
    assert "components/example_gen/plays_schema.pbtxt" in files
    assert not [name for name in files if name.startswith(("pipeline/", "kubeflow/"))]
    assert not [name for name in files if name.endswith("_test.py")]
