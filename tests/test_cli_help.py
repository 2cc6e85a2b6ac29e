"""Every `--help` of every `skserve` subcommand renders cleanly (no server).

argparse %-formats argument help strings, but a description or epilog only when it holds
`%(prog)`: a `%%` written into an epilog is printed as `%%`, and a `%(default)s` in the
wrong place is printed raw. Both have shipped before (`skserve loadtest --help`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from skserve.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[str, ...]]:
    """Every command path, e.g. (), ("loadtest",), ("batch", "run")."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


COMMANDS = list(commands(build_parser()))


def test_every_subcommand_is_covered():
    assert {("loadtest",), ("train",), ("serve",), ("batch", "run")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "skserve")
def test_help_has_no_stray_format_markers(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: skserve")
    stray = [line for line in out.splitlines() if "%%" in line or "%(" in line]
    assert not stray, stray
