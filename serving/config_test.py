"""The production TF Serving configuration: files parse as TF Serving parses them, and the
Kubernetes manifests run the stock image on them."""
import os

import pytest
import yaml
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from crossfade.serving import model_config, warmup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "serving", "config")
MANIFEST_DIR = os.path.join(ROOT, "kubeflow", "serving")
CONFIG_FILES = ("models.config", "batching_parameters.txt", "monitoring.config")


def _read(name: str) -> str:
    with open(os.path.join(CONFIG_DIR, name)) as handle:
        return handle.read()


def _message_classes():
    """BatchingParameters and MonitoringConfig as TF Serving declares them (their protos are
    not in the tensorflow-serving-api package)."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (wrappers_pb2,):
        pool.AddSerializedFile(dependency.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="crossfade_test_tf_serving_configs.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    field = descriptor_pb2.FieldDescriptorProto
    batching = proto.message_type.add(name="BatchingParameters")
    for number, name in enumerate(("max_batch_size", "batch_timeout_micros",
                                   "max_enqueued_batches", "num_batch_threads"), start=1):
        batching.field.add(name=name, number=number, type=field.TYPE_MESSAGE,
                           type_name=".google.protobuf.Int64Value", label=field.LABEL_OPTIONAL)
    batching.field.add(name="thread_pool_name", number=5, type=field.TYPE_MESSAGE,
                       type_name=".google.protobuf.StringValue", label=field.LABEL_OPTIONAL)
    batching.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64,
                       label=field.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL,
                       label=field.LABEL_OPTIONAL)
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL,
                         label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING,
                         label=field.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=field.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig",
                         label=field.LABEL_OPTIONAL)
    pool.Add(proto)
    factory = message_factory.MessageFactory(pool)  # protobuf 3.20's API
    return tuple(factory.GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
                 for name in ("BatchingParameters", "MonitoringConfig"))


def _manifests():
    documents = {}
    for name in ("deployment.yaml", "service.yaml", "configmap.yaml"):
        with open(os.path.join(MANIFEST_DIR, name)) as handle:
            document = yaml.safe_load(handle)
        documents[document["kind"]] = document
    return documents


def test_model_config_has_stable_and_canary_labels_on_loaded_versions():
    config = text_format.Parse(_read("models.config"),
                               model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == \
        ("crossfade", "/models/crossfade", "tensorflow")
    versions = set(model.model_version_policy.specific.versions)
    assert set(model.version_labels) == {"stable", "canary"}
    assert set(model.version_labels.values()) <= versions
    (local,) = model_config.parse_model_server_config(_read("models.config"),
                                                       {"crossfade": "/tmp/here"})
    assert local.base_path == "/tmp/here" and local.labels == dict(model.version_labels)
    assert local.policy.select([1, *versions]) == versions


def test_batching_and_monitoring_files_parse():
    batching_class, monitoring_class = _message_classes()
    batching = text_format.Parse(_read("batching_parameters.txt"), batching_class())
    assert batching.max_batch_size.value >= warmup.BATCH_ROWS
    assert list(batching.allowed_batch_sizes) == sorted(batching.allowed_batch_sizes)
    assert batching.allowed_batch_sizes[-1] == batching.max_batch_size.value
    monitoring = text_format.Parse(_read("monitoring.config"), monitoring_class())
    assert monitoring.prometheus_config.enable
    service = _manifests()["Service"]
    assert service["metadata"]["annotations"]["prometheus.io/path"] == \
        monitoring.prometheus_config.path


def test_the_config_map_carries_the_config_files_verbatim():
    data = _manifests()["ConfigMap"]["data"]
    assert set(data) == set(CONFIG_FILES)
    for name in CONFIG_FILES:
        assert data[name] == _read(name), f"kubeflow/serving/configmap.yaml: {name} differs"


def test_the_deployment_runs_tf_serving_on_the_config_and_the_pushers_output():
    documents = _manifests()
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("tensorflow/serving:")
    flags = dict(arg.lstrip("-").split("=", 1) for arg in container["args"])
    assert flags["model_config_file"] == "/config/models.config"
    assert flags["batching_parameters_file"] == "/config/batching_parameters.txt"
    assert flags["monitoring_config_file"] == "/config/monitoring.config"
    assert flags["enable_batching"] == "true"
    assert (flags["port"], flags["rest_api_port"]) == ("8500", "8501")
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": "/v1/models/crossfade", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts["config"]["mountPath"] == "/config"
    assert volumes["config"]["configMap"]["name"] == \
        documents["ConfigMap"]["metadata"]["name"]
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"]
    assert "persistentVolumeClaim" in volumes["models"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    service = documents["Service"]["spec"]
    assert service["selector"] == documents["Deployment"]["spec"]["selector"]["matchLabels"]
    assert {port["targetPort"] for port in service["ports"]} == set(ports)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_files_end_with_a_newline(name):
    assert _read(name).endswith("\n")
