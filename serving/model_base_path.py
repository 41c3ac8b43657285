"""TF Serving's model base path: `<base path>/<version>/saved_model.pb`, on any filesystem.

TF Serving's file-system source polls `--model_base_path` and treats every subfolder whose name
is all digits as a version (the number, so "00000123" is version 123), serving the highest by
default. Anything else there — the Pusher's hidden staging folders, stray files — is ignored.
This module is the one reader of that layout: the Pusher (next version number), the local
server (what to load) and `crossfade status` (what is served) all list versions with it.
Paths go through `tf.io.gfile`, so `gs://` and `s3://` base paths list like local ones.
"""
from typing import Dict, List

import tensorflow as tf

# The served model's name: TF Serving's --model_name, the folder under `<output>/serving/`
# and `ModelSpec.name` in requests.
MODEL_NAME = "crossfade"


def versions(base_path: str) -> Dict[int, str]:
    """{version: folder name} of the all-digit subfolders of `base_path`.

    When two names give one number ("7" and "007") the first in sorted order wins, as in TF
    Serving. Raises `tf.errors.OpError` (e.g. NotFoundError) if `base_path` cannot be listed.
    """
    found: Dict[int, str] = {}
    # Object stores list folders with a trailing slash.
    for name in sorted(entry.rstrip("/") for entry in tf.io.gfile.listdir(base_path)):
        if name.isdigit() and tf.io.gfile.isdir(tf.io.gfile.join(base_path, name)):
            found.setdefault(int(name), name)
    return found


def served_versions(base_path: str) -> List[str]:
    """The version folders TF Serving would see under `base_path`, oldest first ([] if none
    or if `base_path` does not exist)."""
    if not tf.io.gfile.isdir(base_path):
        return []
    listed = versions(base_path)
    return [listed[version] for version in sorted(listed)]
