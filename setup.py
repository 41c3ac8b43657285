"""crossfade: a TFX pipeline that learns what a listener wants to hear next.

The repository keeps its product folders at the top (`pipeline/`, `components/`, `serving/`,
`kubeflow/`); they install under one import name, `crossfade` (`crossfade.pipeline`, ...), so
crossfade co-installs with packages that own generic names (the Kubeflow SDK's `kubeflow`, the
`pipeline` of every `tfx template copy` project). `crossfade` itself is a namespace package:
it has no code of its own. `bench/` (performance benchmarks), `tests/` and the unit tests
beside the modules are not installed.
"""
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PRODUCT_FOLDERS = ("pipeline", "components", "serving", "kubeflow")


def _packages():
    """crossfade.<folder>[.<sub>...] for every package below the product folders."""
    found = []
    for folder in PRODUCT_FOLDERS:
        found.append(f"crossfade.{folder}")
        found += [f"crossfade.{folder}.{sub}" for sub in find_packages(folder)]
    return found


class BuildWithoutTests(build_py):
    """Leaves the unit tests that live beside the modules (*_test.py, conftest.py) out of the
    wheel; an editable install maps whole folders, so a checkout still runs them."""

    def find_package_modules(self, package, package_dir):
        return [entry for entry in super().find_package_modules(package, package_dir)
                if not (entry[1].endswith("_test") or entry[1] == "conftest")]


setup(
    name="crossfade",
    cmdclass={"build_py": BuildWithoutTests},
    version="0.1.0",
    description="Two-tower music recommendation pipeline on TFX, served by TF Serving",
    python_requires=">=3.9,<3.11",
    packages=_packages(),
    package_dir={f"crossfade.{folder}": folder for folder in PRODUCT_FOLDERS},
    # The plays schema, and the C++ source `crossfade check-model` compiles on first use.
    package_data={"crossfade.components.example_gen": ["*.pbtxt"],
                  "crossfade.serving.runtime_check": ["*.cc"]},
    # Versions are pinned by requirements.txt + constraints.lock.txt (see the Makefile).
    install_requires=[
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.7",
        "tensorflow-serving-api>=2.16,<2.17",
        "apache-beam[gcp]>=2.61,<2.62",
        "implicit>=0.7,<0.8",
        "matplotlib>=3.9,<3.10",
        "scipy>=1.12,<1.13",
    ],
    entry_points={"console_scripts": ["crossfade = crossfade.pipeline.cli:main"]},
)
