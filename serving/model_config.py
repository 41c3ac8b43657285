"""Which models a server serves: name, base path, version policy and version labels.

The same `ModelServerConfig` text file (`model_config_list { config { ... } }`) that
`tensorflow_model_server --model_config_file` reads configures the local server, so
`serving/config/models.config` is exercised locally too (with its base paths rewritten).

Version policies, as TF Serving applies them to the all-digit folders under `base_path`:
``latest`` (default, 1 version): the N highest; ``all``: every one; ``specific``: the listed
versions that exist. A label names one version (`stable`, `canary`); requests may ask for a
label instead of a number.
"""
import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: Tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"unknown version policy {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError("the latest policy needs num_versions >= 1")

    def select(self, on_disk: Iterable[int]) -> Set[int]:
        """The versions to keep loaded, out of the versions present on disk."""
        on_disk = sorted(set(on_disk))
        if self.kind == "all":
            return set(on_disk)
        if self.kind == "specific":
            return set(on_disk) & set(self.versions)
        return set(on_disk[-self.num_versions:])


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: Mapping[str, int] = dataclasses.field(default_factory=dict)


def _policy(proto) -> VersionPolicy:
    which = proto.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        return VersionPolicy("specific", versions=tuple(proto.specific.versions))
    if which == "latest":
        return VersionPolicy("latest", num_versions=proto.latest.num_versions or 1)
    return VersionPolicy()


def parse_model_server_config(text: str,
                              base_path_overrides: Optional[Mapping[str, str]] = None
                              ) -> List[ModelConfig]:
    """Models of a text-format ModelServerConfig; `base_path_overrides` maps a model name
    to a local base path (the file's paths are the container's)."""
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError("only model_config_list configs are supported")
    overrides = dict(base_path_overrides or {})
    models = []
    for entry in config.model_config_list.config:
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {entry.name!r}: platform {entry.model_platform!r} is not "
                             "supported (only tensorflow)")
        models.append(ModelConfig(name=entry.name,
                                  base_path=overrides.get(entry.name, entry.base_path),
                                  policy=_policy(entry.model_version_policy),
                                  labels=dict(entry.version_labels)))
    names = [model.name for model in models]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"model names must be non-empty and unique, got {names}")
    return models


def read_model_config_file(path: str,
                           base_path_overrides: Optional[Mapping[str, str]] = None
                           ) -> List[ModelConfig]:
    with open(path) as handle:
        return parse_model_server_config(handle.read(), base_path_overrides)


def parse_labels(pairs: Iterable[str]) -> Dict[str, int]:
    """{"stable": 12} from ["stable=12"] (the serve command's --label flags)."""
    labels = {}
    for pair in pairs:
        name, sep, version = pair.partition("=")
        if not sep or not name or not version.isdigit():
            raise ValueError(f"expected LABEL=VERSION, got {pair!r}")
        labels[name] = int(version)
    return labels
