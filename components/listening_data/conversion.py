"""The contract between a format converter and the importer (`importers.import_dataset`).

A `Converter` reads a data set from its source folder and writes one of the layouts of
`layout` into an empty output folder; the `Conversion` it returns says what it wrote, and the
importer records that in the output's manifest. A leaf module: the converters import it rather
than `importers`, so `importers` can import them without a cycle.
"""
import dataclasses
from typing import Any, Callable, Dict


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What a converter wrote into its output folder; `import_dataset` adds the paths."""

    layout: str  # layout.GENERIC or layout.SIMULATOR
    users: int
    items: int
    interactions: int
    has_timestamps: bool
    dropped: Dict[str, int]  # reason -> rows dropped (e.g. "podcast_episodes")
    manifest_notes: Dict[str, Any] = dataclasses.field(default_factory=dict)


Converter = Callable[[str, str], Conversion]  # (source_dir, empty out_dir) -> Conversion
