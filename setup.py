"""crossfade: a TFX pipeline that learns what a listener wants to hear next."""
from setuptools import find_packages, setup

setup(
    name="crossfade",
    version="0.1.0",
    description="Two-tower music recommendation pipeline on TFX, served by TF Serving",
    python_requires=">=3.9,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                    "bench", "bench.*",
                                    "serving", "serving.*", "kubeflow", "kubeflow.*"]),
    package_data={"components.example_gen": ["*.pbtxt"]},
    # Versions are pinned by requirements.txt + constraints.lock.txt (see the Makefile).
    install_requires=[
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.7",
        "tensorflow-serving-api>=2.16,<2.17",
        "apache-beam[gcp]>=2.61,<2.62",
    ],
    entry_points={"console_scripts": ["crossfade = pipeline.cli:main"]},
)
