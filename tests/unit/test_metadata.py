from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from release.errors import MetadataFormatError
from release.metadata import FIELD_NAMES, IdSet, check_record, duplicate_tags, read_chunk, records_strict
from release.posts import Dialect, decode
from tests.conftest import SAMPLES


def sample_records() -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (SAMPLES / "danbooru2017_era_25lines.jsonl").read_text().splitlines()]
    records += [json.loads((SAMPLES / "line_263162_from_danbooru-gpt.jsonl").read_text())]
    text = (SAMPLES / "gwern_page_3_examples_jq.json").read_text()
    decoder, pos = json.JSONDecoder(), 0
    while text[pos:].strip():
        while text[pos].isspace():
            pos += 1
        obj, pos = decoder.raw_decode(text, pos)
        records.append(obj)
    return records


def test_every_real_sample_line_conforms() -> None:
    records = sample_records()
    assert len(records) == 29
    for record in records:
        assert check_record(record) is None, record["id"]
        assert tuple(record) == FIELD_NAMES


def mutate(change: str) -> dict[str, Any]:
    record = dict(sample_records()[0])
    if change == "missing":
        del record["md5"]
    elif change == "order":
        record = {"created_at": record.pop("created_at"), **record}
    elif change == "number":
        record["score"] = 3
    elif change == "rating":
        record["rating"] = "x"
    elif change == "category":
        record["tags"] = [{"id": "1", "name": "a", "category": "2"}]
    elif change == "bool":
        record["is_deleted"] = "false"
    elif change == "time":
        record["created_at"] = "2014-08-16T20:11:29Z"
    elif change == "extra":
        record["posts"] = []
    return record


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("missing", "md5"),
        ("order", "created_at"),
        ("number", "score"),
        ("rating", "rating"),
        ("category", "tags"),
        ("bool", "is_deleted"),
        ("time", "created_at"),
        ("extra", "posts"),
    ],
)
def test_malformed_records_name_the_field(change: str, field: str) -> None:
    fault = check_record(mutate(change))
    assert fault is not None and fault[0] == field


def test_chunk_reader_reports_file_line_and_field(tmp_path: Path) -> None:
    good = json.dumps(sample_records()[0], separators=(",", ":"))
    chunk = tmp_path / "2019000000000000"
    chunk.write_text(good + "\n" + "{not json\n" + json.dumps(mutate("rating")) + "\n")
    items = list(read_chunk(chunk))
    assert [i.line for i in items] == [1, 2, 3]
    assert items[0].record is not None
    assert items[1].record is None and "not JSON" in (items[1].problem or "")
    assert items[2].field == "rating"
    with pytest.raises(MetadataFormatError) as info:
        list(records_strict(chunk))
    assert info.value.line == 2 and str(chunk) in info.value.message


def test_duplicate_tags_are_found() -> None:
    record = sample_records()[0]
    post = decode(record, Dialect.OLD)
    assert post is not None and duplicate_tags(post) == []
    record = {**record, "tags": record["tags"] + [record["tags"][0]]}
    post = decode(record, Dialect.OLD)
    assert post is not None and duplicate_tags(post) == [record["tags"][0]["name"]]


def test_id_set_is_compact_and_exact() -> None:
    a, b = IdSet(), IdSet()
    for value in (0, 7, 8, 1000, 5_020_995):
        assert a.add(value)
    assert not a.add(7)
    b.add(8)
    assert 5_020_995 in a and 5_020_994 not in a and 10**9 not in a
    assert len(a) == 5
    assert list(a.difference(b)) == [0, 7, 1000, 5_020_995]
