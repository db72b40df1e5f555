"""The release file: every bad one gets one error naming the key; the schema and the example stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from release.cut.releasefile import SCHEMA_FILE, load_release_file, release_file_reference, release_file_schema
from release.errors import BadInput

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "root").mkdir(exist_ok=True)
    path = tmp_path / "r.toml"
    path.write_text('name = "danbooru2019"\nyear = 2019\nroot = "root"\noutput = "out"\n' + body)
    return path


def error_of(path: Path) -> BadInput:
    with pytest.raises(BadInput) as caught:
        load_release_file(path)
    return caught.value


def test_a_minimal_release_file_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    loaded = load_release_file(write(tmp_path, ""))
    assert loaded.root == tmp_path / "root"
    assert loaded.output == tmp_path / "out"
    assert loaded.spec.torrents.enabled and loaded.spec.derive_512px.size == 512


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("colour = 1\n", "colour", "unknown key"),
        ("[torrents]\npiece_lenght = 4\n", "torrents.piece_lenght", "unknown key"),
        ('final_id = "many"\n', "final_id", "integer"),
        ('[derive_512px]\nbackground = "grey"\n', "derive_512px.background", "'auto', 'white' or 'black'"),
        ('[[publish.s3]]\nprefix = "x"\n', "publish.s3.0.bucket", "Field required"),
        ('scan_allow = ["nonsense"]\n', "scan_allow", "unknown finding kind"),
        ('[torrents]\nprofiles = ["utorrent-2"]\n', "torrents.profiles", "unknown client profile"),
        ('takedowns = "gone.txt"\n', "takedowns", "no such file"),
        ('[previous]\nname = "danbooru2018"\nmanifest = "m.zst"\n', "previous.manifest", "no such file"),
        ('[metadata]\nexport = "exports"\n', "metadata.export", "no such folder"),
    ],
)
def test_a_bad_release_file_names_the_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    error = error_of(write(tmp_path, body))
    assert error.path is not None and error.path.endswith(f": {key}")
    assert problem in error.problem


def test_a_missing_root_and_bad_toml_are_named(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('name = "x"\nyear = 2019\nroot = "nowhere"\noutput = "out"\n')
    assert error_of(path).path == f"{path}: root"
    path.write_text("name = \n")
    assert "not valid TOML" in error_of(path).problem
    assert "no such release file" in error_of(tmp_path / "absent.toml").problem


def test_the_example_release_file_is_valid_but_for_its_paths(tmp_path: Path) -> None:
    text = (REPO / "manifests" / "release.example.toml").read_text()
    example = tmp_path / "example.toml"
    example.write_text(text)
    # every key is accepted; the first complaint is a path of the maintainer's machine
    assert "no such" in error_of(example).problem


def test_the_schema_in_the_repository_is_the_models(tmp_path: Path) -> None:
    assert SCHEMA_FILE.read_text() == release_file_schema()


def test_the_reference_in_docs_is_the_models() -> None:
    assert (REPO / "docs" / "release-file.md").read_text() == release_file_reference()
