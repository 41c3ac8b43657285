"""The wheel installs as `crossfade` only, beside the Kubeflow SDK.

setup.py maps the product folders (pipeline/, components/, serving/, kubeflow/) into
`crossfade.*`. Installed under their bare names they would collide with other distributions:
the Kubeflow SDK (the PyPI distribution `kubeflow`) ships a regular package `kubeflow`, and
`pipeline` is the package of every `tfx template copy` project, so one install would overwrite
the other's files. This builds the wheel from a copy of the sources (the checkout is not
written), checks that its only top-level name is `crossfade`, installs it beside the Kubeflow
SDK's wheel in a fresh virtual environment with nothing else in it, and checks that both
distributions' files are intact and that both import from that environment.

The package `__init__` files import nothing outside the standard library, so importing them
needs no dependency; the environment has none. Downloading the SDK needs the package index:
without it the tests that install it are skipped.
"""
import base64
import configparser
import csv
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from package_sources import REPO_ROOT, product_folders

PACKAGE = "crossfade"
SUBPACKAGES = ("pipeline", "components", "serving", "kubeflow")
# Bare names crossfade must not install (`kubeflow` is the Kubeflow SDK's to own).
GENERIC_NAMES = ("pipeline", "components", "serving")
SCRIPT = "crossfade = crossfade.pipeline.cli:main"


def _env(tmp):
    """This environment, with pip's and Python's scratch files kept below `tmp`."""
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(command, tmp):
    return subprocess.run([str(part) for part in command], cwd=tmp, env=_env(tmp),
                          capture_output=True, text=True, check=False)


def _check(command, tmp):
    """stdout of `command`; a failure shows its output."""
    done = _run(command, tmp)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The crossfade wheel, built from a copy of setup.py, pyproject.toml and the folders."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy2(os.path.join(REPO_ROOT, name), source / name)
    for folder in product_folders():
        shutil.copytree(os.path.join(REPO_ROOT, folder), source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-cache-dir", "-w", tmp / "dist", source], tmp)
    (path,) = glob.glob(str(tmp / "dist" / f"{PACKAGE}-*.whl"))
    return path


@pytest.fixture(scope="module")
def kubeflow_wheel(tmp_path_factory):
    """The Kubeflow SDK's wheel (the PyPI distribution `kubeflow`), from the package index."""
    tmp = tmp_path_factory.mktemp("kubeflow_sdk")
    done = _run([sys.executable, "-m", "pip", "download", "kubeflow", "--no-deps",
                 "--only-binary=:all:", "--no-cache-dir", "--retries", "1", "-d", tmp / "kf"],
                tmp)
    if done.returncode != 0:
        pytest.skip("cannot download the Kubeflow SDK wheel (`pip download kubeflow`; no "
                    f"network or package index?):\n{done.stderr[-2000:]}")
    (path,) = glob.glob(str(tmp / "kf" / "kubeflow-*.whl"))
    with zipfile.ZipFile(path) as archive:
        assert "kubeflow/__init__.py" in archive.namelist(), f"{path} ships no kubeflow package"
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel, kubeflow_wheel):
    """(python, site-packages) of a fresh environment holding only the two wheels."""
    tmp = tmp_path_factory.mktemp("venv")
    _check([sys.executable, "-m", "venv", tmp / "venv"], tmp)
    python = str(tmp / "venv" / "bin" / "python")
    _check([python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir",
            wheel, kubeflow_wheel], tmp)
    site = _check([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                  tmp).strip()
    return python, site


def _wheel_names(path):
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _wheel_text(path, name):
    with zipfile.ZipFile(path) as archive:
        return archive.read(name).decode("utf-8")


def _dist_info(site, distribution):
    (path,) = glob.glob(os.path.join(site, f"{distribution}-*.dist-info"))
    return path


def _record(dist_info):
    """(path, hash) of each line of the RECORD of `dist_info`."""
    with open(os.path.join(dist_info, "RECORD"), newline="", encoding="utf-8") as handle:
        return [(row[0], row[1]) for row in csv.reader(handle) if row]


def _damaged(site, record):
    """Files of `record` (relative to `site`) that are missing or not the bytes installed."""
    damaged = []
    for path, digest in record:
        if not digest:  # RECORD itself, the .pyc files pip compiled
            continue
        algorithm, _, expected = digest.partition("=")
        assert algorithm == "sha256", f"{path}: {digest}"
        full = os.path.normpath(os.path.join(site, path))
        if not os.path.isfile(full):
            damaged.append(f"{path}: missing")
            continue
        with open(full, "rb") as handle:
            actual = base64.urlsafe_b64encode(hashlib.sha256(handle.read()).digest())
        if actual.rstrip(b"=").decode() != expected:
            damaged.append(f"{path}: not the file installed")
    return damaged


def test_the_wheel_has_one_top_level_name(wheel):
    version = os.path.basename(wheel).split("-")[1]
    allowed = {PACKAGE, f"{PACKAGE}-{version}.dist-info", f"{PACKAGE}-{version}.data"}
    names = _wheel_names(wheel)
    others = sorted({name.split("/")[0] for name in names} - allowed)
    assert not others, f"the wheel installs top-level names besides {PACKAGE}: {others}"
    top_level = f"{PACKAGE}-{version}.dist-info/top_level.txt"
    if top_level in names:
        assert _wheel_text(wheel, top_level).split() == [PACKAGE]
    # crossfade is a namespace package: it has no code of its own.
    assert f"{PACKAGE}/__init__.py" not in names


def test_the_wheel_holds_the_code_data_and_command(wheel):
    names = _wheel_names(wheel)
    for name in ("crossfade/components/example_gen/plays_schema.pbtxt",
                 "crossfade/serving/runtime_check/saved_model_check.cc",
                 "crossfade/pipeline/cli.py"):
        assert name in names, f"the wheel has no {name}"
    tests = [name for name in names if name.endswith(("_test.py", "/conftest.py"))]
    assert not tests, f"unit tests ship in the wheel: {tests[:5]}"
    version = os.path.basename(wheel).split("-")[1]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_wheel_text(wheel, f"{PACKAGE}-{version}.dist-info/entry_points.txt"))
    scripts = {f"{key} = {value.strip()}" for key, value in entry_points["console_scripts"].items()}
    assert SCRIPT in scripts


def test_neither_install_overwrites_the_other(venv):
    _, site = venv
    records = {name: _record(_dist_info(site, name)) for name in (PACKAGE, "kubeflow")}
    for name, record in records.items():
        damaged = _damaged(site, record)
        assert not damaged, f"{name}'s installed files changed: {damaged}"
    shared = {path for path, _ in records[PACKAGE]} & {path for path, _ in records["kubeflow"]}
    assert not shared, f"files both distributions install: {sorted(shared)}"


def test_both_import_from_the_environment(venv, kubeflow_wheel, tmp_path):
    python, site = venv
    modules = [f"{PACKAGE}.{name}" for name in SUBPACKAGES] + ["kubeflow"]
    code = (f"import json, sys\nimport {', '.join(modules)}\n"
            f"print(json.dumps({{name: sys.modules[name].__file__ for name in {modules!r}}}))")
    files = json.loads(_check([python, "-I", "-c", code], tmp_path))
    for name in SUBPACKAGES:
        assert files[f"{PACKAGE}.{name}"] == os.path.join(site, PACKAGE, name, "__init__.py")
    assert files["kubeflow"] == os.path.join(site, "kubeflow", "__init__.py")
    with open(files["kubeflow"], encoding="utf-8") as handle:
        assert handle.read() == _wheel_text(kubeflow_wheel, "kubeflow/__init__.py")


@pytest.mark.parametrize("name", GENERIC_NAMES)
def test_no_generic_top_level_name_is_installed(venv, name, tmp_path):
    python, _ = venv
    done = _run([python, "-I", "-c", f"import {name}"], tmp_path)
    assert done.returncode != 0, f"`import {name}` works in an environment of crossfade alone"
    assert f"No module named '{name}'" in done.stderr
