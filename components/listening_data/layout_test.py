"""The layout names: what `crossfade generate` and `crossfade import` write, read back."""
import json
import subprocess
import sys

import pytest

from crossfade.components.listening_data import layout


def test_span_names_are_zero_padded():
    assert layout.span_name(1) == "span-0001"
    assert layout.span_name(202301, digits=6) == "span-202301"
    assert layout.span_name(99901, digits=6) == "span-099901"
    with pytest.raises(ValueError):
        layout.span_name(-1)


def test_plays_pattern_matches_the_plays_files():
    assert layout.PLAYS_PATTERN == "plays/span-*/*.csv"


@pytest.mark.parametrize("content, expected", [
    (None, ""),  # no manifest
    ('{"format": "lastfm-hetrec", "users": 3}', "lastfm-hetrec"),
    ('{"users": 3}', ""),
    ('{"format": null}', ""),
    ('["format"]', ""),  # not an object
    ("{not json", ""),
    (b"\xff\xfe", ""),  # not UTF-8
])
def test_imported_format(tmp_path, content, expected):
    if isinstance(content, bytes):
        (tmp_path / "manifest.json").write_bytes(content)
    elif content is not None:
        (tmp_path / "manifest.json").write_text(content, encoding="utf-8")
    assert layout.imported_format(str(tmp_path)) == expected


def test_imported_format_of_an_import(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "interactions.csv").write_text("user_id,item_id\nu1,i1\n")
    from crossfade.components.listening_data import importers
    importers.import_dataset(importers.CSV, str(tmp_path / "src"), str(tmp_path / "out"))
    assert layout.imported_format(str(tmp_path / "out")) == importers.CSV
    manifest = json.loads((tmp_path / "out" / layout.MANIFEST_FILE).read_text())
    assert manifest["format"] == importers.CSV


def test_layout_and_conversion_load_no_data_libraries():
    code = ("import sys\n"
            "import crossfade.components.listening_data.conversion\n"
            "import crossfade.components.listening_data.layout\n"
            "print(sorted({'numpy', 'pandas', 'tensorflow'} & set(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
