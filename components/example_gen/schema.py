"""The schema of the plays examples, shipped as a file for ImportSchemaGen.

`plays_schema.pbtxt` is generated from `crossfade.components.features.RAW_FEATURE_SPEC` by
`python -m crossfade.components.example_gen.schema`; a test keeps the two in sync.
"""
import os

from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils

from crossfade.components import features

PLAYS_SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "plays_schema.pbtxt")


def plays_schema() -> schema_pb2.Schema:
    return schema_utils.schema_from_feature_spec(features.RAW_FEATURE_SPEC)


if __name__ == "__main__":
    from google.protobuf import text_format
    with open(PLAYS_SCHEMA_FILE, "w") as handle:
        handle.write(text_format.MessageToString(plays_schema()))
