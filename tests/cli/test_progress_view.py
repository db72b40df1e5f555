"""Progress as the command line renders it: bars on a terminal, a line now and then otherwise."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from release.cli import output
from release.progress import Progress


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_bars_on_a_terminal_and_lines_elsewhere(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=terminal, width=100)
    monkeypatch.setattr(output, "err_console", lambda: console)
    with output.ProgressView(True) as view:
        view(Progress("hash", 3, 10, 300, 1000))
        view(Progress("hash", 10, 10, 1000, 1000, final=True))
    text = screen.getvalue()
    if terminal:
        assert "\x1b[" in text and "hash 10/10 files" in text  # a live bar, drawn with escape codes
    else:
        assert text == "hash: 10/10 files, 1.0 kB/1.0 kB\n"  # the final report only (the first is < 5 s old)


def test_no_progress_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True)
    monkeypatch.setattr(output, "err_console", lambda: console)
    with output.ProgressView(False) as view:
        view(Progress("hash", 10, 10, 1000, 1000, final=True))
    assert screen.getvalue() == ""
