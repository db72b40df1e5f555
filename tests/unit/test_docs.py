"""The generated documents in docs/ are what the code says today."""

from __future__ import annotations

from pathlib import Path

from release.cli.reference import OUTPUTS, reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    assert (DOCS / "cli.md").read_text() == reference(), "run: python -m release.cli.reference > docs/cli.md"


def test_every_command_with_json_is_in_the_reference() -> None:
    import typer.main

    from release.cli import app

    group = typer.main.get_command(app)
    names: list[str] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        names += [f"{name} {sub}" for sub in subs] if subs else [name]
    documented = {key.split(" (")[0].split(" --")[0] for key in OUTPUTS}
    assert sorted(set(names) - documented) == []
