"""The command line's shape: every command defaults to text output (the ``--output`` action is
shared through a common parent, so one command must not change another's default)."""

from __future__ import annotations

import argparse

from worker.cli.main import build_parser


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    yield from commands(child, (*prefix, name))
                else:
                    yield (*prefix, name), child


def test_every_command_defaults_to_text_output():
    found = list(commands(build_parser()))
    assert ("dlq", "redrive") in [path for path, _ in found]
    for path, child in found:
        defaults = {a.dest: a.default for a in child._actions}
        if "output" in defaults:
            assert defaults["output"] == "text", path


def test_abbreviated_flags_are_refused(capsys):
    parser = build_parser()
    assert parser.parse_args(["run", "--role", "router"]).role == "router"
    for argv in (["run", "--rol", "router"], ["dlq", "redrive", "--dry"]):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")
    assert "unrecognized arguments" in capsys.readouterr().err
