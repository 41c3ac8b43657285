"""The TF Serving manifests serve what the cluster config's Pusher pushes."""
import os
import string

import yaml

from crossfade.kubeflow import cluster_config

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving",
                        "tf-serving.yaml")
ENV = {"CROSSFADE_OUTPUT_DIR": "gs://bucket/crossfade", "CROSSFADE_NAMESPACE": "crossfade",
       "CROSSFADE_SERVING_GSA": "serving@project.iam.gserviceaccount.com",
       "CROSSFADE_DATA_DIR": "/unused", "CROSSFADE_BUCKET": "gs://bucket",
       "CROSSFADE_IMAGE": "image", "CROSSFADE_BEAM_RUNNER": "direct"}


def _documents():
    with open(MANIFEST) as handle:
        # string.Template is envsubst's ${NAME} syntax; substitute() fails on an unset name.
        text = string.Template(handle.read()).substitute(ENV)
    return {document["kind"]: document for document in yaml.safe_load_all(text)}


def test_tf_serving_reads_the_pushers_base_path():
    config = cluster_config.pipeline_config(ENV)
    container = _documents()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in container["args"])
    assert flags["model_name"] == config.model_name
    assert flags["model_base_path"] == config.serving_base_path
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert probe == f"/v1/models/{config.model_name}"


def test_the_service_exposes_grpc_and_rest():
    documents = _documents()
    assert set(documents) == {"ServiceAccount", "Deployment", "Service"}
    service = documents["Service"]["spec"]
    deployment = documents["Deployment"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {port["port"] for port in service["ports"]} == {8500, 8501}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == \
        documents["ServiceAccount"]["metadata"]["name"]
