"""A Pusher whose new model versions appear in the serving base path all at once.

TF Serving polls `<base>/<model>/` and loads any all-digit subfolder it finds. The stock Pusher
copies straight into `<base>/<model>/<version>`, so a server polling mid-copy can see a partial
version. This Pusher copies into a hidden staging folder beside it (not all digits, so servers
ignore it) and renames it into place: on a local or POSIX filesystem the version appears
complete or not at all. Existing versions are never touched, and each new version number is
greater than every existing one (TF Serving serves the highest).
"""
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from crossfade.serving import model_base_path

STAGING_PREFIX = ".staging-"
# A staging folder nothing has written to for this long belongs to a push that was killed
# (a live copy keeps writing files); the next push removes it. Far above any copy's pauses.
STALE_STAGING_SECONDS = 3600


def next_version(base_directory: str) -> int:
    """A version number above every existing one, normally the current Unix time."""
    existing = model_base_path.versions(base_directory) if fileio.exists(base_directory) else {}
    return max([int(time.time())] + [version + 1 for version in existing])


def publish(model_path: str, base_directory: str) -> str:
    """Copies the SavedModel at `model_path` to `<base_directory>/<new version>` atomically.

    Object stores (gs://, s3://) have no atomic folder rename: there the version is copied in
    place with saved_model.pb last, as the stock Pusher does, so a server that polls mid-copy
    finds no loadable model yet rather than a partial one.
    """
    fileio.makedirs(base_directory)
    version = str(next_version(base_directory))
    if "://" in base_directory:
        return _publish_saved_model_last(model_path, base_directory, version)
    remove_stale_staging(base_directory)
    staging = os.path.join(base_directory, STAGING_PREFIX + version)
    if fileio.exists(staging):
        shutil.rmtree(staging)
    io_utils.copy_dir(model_path, staging)
    destination = os.path.join(base_directory, version)
    os.rename(staging, destination)  # atomic on one filesystem; fails if the version exists
    return version


def remove_stale_staging(base_directory: str, now: Optional[float] = None) -> List[str]:
    """Removes staging folders of killed pushes (see STALE_STAGING_SECONDS); returns them."""
    now = time.time() if now is None else now
    removed = []
    for name in os.listdir(base_directory):
        path = os.path.join(base_directory, name)
        if name.startswith(STAGING_PREFIX) and os.path.isdir(path) \
                and now - _last_write(path) > STALE_STAGING_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            logging.info("Removed %s, left by an interrupted push", path)
    return removed


def _last_write(folder: str) -> float:
    """The newest modification time in the tree under `folder`."""
    times = [os.path.getmtime(folder)]
    for parent, _, files in os.walk(folder):
        times += [os.path.getmtime(os.path.join(parent, name)) for name in files]
    return max(times)


def _publish_saved_model_last(model_path: str, base_directory: str, version: str) -> str:
    destination = os.path.join(base_directory, version)
    io_utils.copy_dir(model_path, destination, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(os.path.join(model_path, "saved_model.pb"),
                       os.path.join(destination, "saved_model.pb"))
    return version


class AtomicPushExecutor(pusher_executor.Executor):
    """Pushes blessed models with `publish`; unblessed models are marked not pushed."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("AtomicPusher pushes to a filesystem destination only")
        base_directory = destination.filesystem.base_directory
        model_path = self.GetModelPath(input_dict)
        version = publish(model_path, base_directory)
        serving_path = os.path.join(base_directory, version)
        logging.info("Model version %s published at %s", version, serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


class AtomicPusher(Pusher):
    """The stock Pusher component with `AtomicPushExecutor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
