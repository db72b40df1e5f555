from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from release.models import SCHEMAS, ManifestHeader, ManifestRecord
from tests.conftest import REPO

GOOD = {
    "path": "original/0000/1000.jpg",
    "size": 3,
    "mtime_ns": 1,
    "xxh3_128": "0" * 32,
    "sha256": "a" * 64,
    "md5": "b" * 32,
}


def test_record_round_trips_deterministically() -> None:
    record = ManifestRecord.model_validate(GOOD)
    line = record.model_dump_json()
    assert ManifestRecord.model_validate_json(line) == record
    assert line == ManifestRecord.model_validate_json(line).model_dump_json()
    assert list(json.loads(line)) == list(GOOD)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", "3"),  # strict: no string-to-int coercion
        ("size", -1),
        ("sha256", "A" * 64),
        ("md5", "b" * 31),
        ("path", "../etc/passwd"),
        ("path", "/abs"),
    ],
)
def test_record_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        ManifestRecord.model_validate({**GOOD, field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_record_is_frozen_and_closed() -> None:
    record = ManifestRecord.model_validate(GOOD)
    with pytest.raises(ValidationError):
        record.size = 4  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ManifestRecord.model_validate({**GOOD, "extra": 1})


def test_header_defaults_carry_format_and_version() -> None:
    header = ManifestHeader(release="r", algorithms=("md5",), files=0, bytes=0, subsets={})
    data = json.loads(header.model_dump_json())
    assert data["format"] == "booru-release-manifest" and data["version"] == 1


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_json_schema_matches_the_models(name: str) -> None:
    committed = json.loads((REPO / "manifests" / "schema" / f"{name}.schema.json").read_text())
    assert committed == SCHEMAS[name].model_json_schema()


@pytest.mark.parametrize("path", ["original/0000/1000.jpg", 'a"b', "a\\b", "é/ü", "tab\tx", "ctl\x01x", "nl\nx", "😀"])
def test_fast_record_line_is_byte_identical_to_pydantic(path: str) -> None:
    from release.manifest.io import record_line

    record = ManifestRecord.model_validate({**GOOD, "path": path, "size": 123456789012, "mtime_ns": -5})
    assert record_line(**record.model_dump()) == record.model_dump_json().encode() + b"\n"
