from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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


def test_id_set_adds_and_answers_many_at_once_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    one, many = IdSet(), IdSet()
    for batch in (rng.integers(0, 50, 40), np.zeros(0, np.int64), rng.integers(0, 3_000_000, 500), np.array([7, 7])):
        for value in batch.tolist():
            one.add(value)
        many.add_many(batch)
        asked = np.concatenate((batch, rng.integers(0, 4_000_000, 300), [0, 7, 8, 10**9]))
        assert many.contains_many(asked).tolist() == [int(v) in one for v in asked.tolist()]
    assert len(many) == len(one) and list(many.difference(IdSet())) == list(one.difference(IdSet()))


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


BAD_VALUES: dict[str, list[Any]] = {
    "num": ["01", "-1", "1.0", "", " 1", "\uff11", 1, None, "1e3"],
    "int": ["--1", "-01", "+1", "", 3, "1 "],
    "time": ["2014-08-16T20:11:29Z", "2014-08-16 20:11:29.1234567 UTC", "2014-8-16 20:11:29 UTC", ""],
    "md5": ["6CB2FF75E16357B7F15E32C2B7E1B0ED", "6cb2ff75", 5],
    "rating": ["x", "S", "", "sq"],
    "bool": ["false", 0, None],
    "str": [None, 5, ["a"]],
    "tags": [[{"name": "a", "id": "1", "category": "0"}], [{"id": "1", "name": "", "category": "0"}],
             [{"id": "01", "name": "a", "category": "0"}], [{"id": "1", "name": "a", "category": "2"}],
             [{"id": "1", "name": "a"}], ["a"], "a"],
    "numlist": [[1], ["01"], [""], "1"],
}  # fmt: skip


def test_the_one_pattern_for_a_line_accepts_the_real_lines_and_nothing_the_checks_refuse() -> None:
    """OLD_LINE lets a line skip check_record: it must never accept what check_record refuses. Every field
    gets the bad values of its kind, and every line 300 random byte edits among JSON's own characters."""
    import random

    from release.metadata import FIELDS, OLD_LINE
    from release.textio import loads

    records = sample_records()
    assert all(OLD_LINE.fullmatch(canonical(r) + b"\n") for r in records)  # the fast path is the usual one
    mutated = []
    for name, kind in FIELDS:
        for bad in BAD_VALUES[kind]:
            mutated.append(canonical({**records[0], name: bad}))
    rng = random.Random(7)
    alphabet = b'"\\,:{}[]0123456789-.aeflnrstuUTC /\x00\x1f\xff\xc3'
    for record in records:
        line = bytearray(canonical(record))
        for _ in range(300):
            edit, at = rng.randrange(3), rng.randrange(len(line))
            copy = bytearray(line)
            if edit == 0:
                copy[at] = rng.choice(alphabet)
            elif edit == 1:
                copy.insert(at, rng.choice(alphabet))
            else:
                del copy[at]
            mutated.append(bytes(copy))
    accepted = 0
    for line in mutated:
        if OLD_LINE.fullmatch(line):
            try:
                obj = loads(line)
            except ValueError:  # bytes that are not UTF-8: read_chunk parses first and reports "not JSON"
                continue
            accepted += 1
            assert check_record(obj) is None, line
    rejected = [line for line in mutated if not OLD_LINE.fullmatch(line)]
    assert accepted > 100 and len(rejected) > 1000  # both sides of the pattern were exercised


def test_chunks_read_the_same_with_and_without_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import release.metadata as metadata

    records = sample_records()
    lines = [canonical(r) for r in records]
    lines[3] = json.dumps(records[3]).encode()  # spaces: valid, not in the pattern's form
    lines[5] = canonical({**records[5], "rating": "x"})
    lines[7] = b"{not json"
    chunk = tmp_path / "2019000000000000"
    chunk.write_bytes(b"\n".join(lines) + b"\n")
    fast = list(read_chunk(chunk))
    monkeypatch.setattr(metadata, "OLD_LINE", re.compile(b"(?!)"))
    slow = list(read_chunk(chunk))
    assert fast == slow
    assert [(item.line, item.field) for item in fast if item.problem] == [(6, "rating"), (8, None)]
