from __future__ import annotations

import pickle

import pytest

from release.cli.errors import translate
from release.errors import (
    BadInput,
    InputIOError,
    ManifestFormatError,
    MetadataFormatError,
    OutputError,
    ReleaseError,
    SchemaVersionError,
    UnsafePath,
)

ERRORS: list[ReleaseError] = [
    BadInput("x", "bad", "fix it"),
    UnsafePath("../x", "path has a '..' component"),
    ManifestFormatError("m.jsonl", 7, "field 'size': Input should be a valid integer"),
    SchemaVersionError("m.jsonl", "newer"),
    MetadataFormatError("2019000000000000", 3, "rating", "bad rating"),
    OutputError("out", "no space left on device"),
    InputIOError("in", "Permission denied"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_survive_the_trip_from_a_worker_process(error: ReleaseError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and copy.__dict__ == error.__dict__ and str(copy) == str(error)


@pytest.mark.parametrize(
    ("error", "code"),
    [(ERRORS[0], 2), (ERRORS[1], 2), (ERRORS[2], 2), (ERRORS[3], 2), (ERRORS[4], 2), (ERRORS[5], 3), (ERRORS[6], 3)],
    ids=lambda x: type(x).__name__ if isinstance(x, Exception) else str(x),
)
def test_one_table_gives_exit_code_and_hint(error: ReleaseError, code: int) -> None:
    got, hint = translate(error)
    assert got == code and hint


def test_message_names_the_place() -> None:
    assert ERRORS[2].message == "m.jsonl:7: field 'size': Input should be a valid integer"
    assert ERRORS[4].message == "2019000000000000:3: field 'rating': bad rating"
    assert ERRORS[0].hint == "fix it" and translate(ERRORS[0])[1] == "fix it"
