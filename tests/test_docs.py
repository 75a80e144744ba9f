"""The README and --help keep their promises."""

from __future__ import annotations

import re
from pathlib import Path

import click

from vanta_box.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def leaf_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()
                  ) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            out += leaf_commands(command, path)
        else:
            out.append((path, command))
    return out


def first_block() -> list[str]:
    match = re.search(r"```(?:sh|bash|console)?\n(.*?)```", README, re.S)
    assert match, "README has no command block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second() -> None:
    before = README.split("```", 1)[0]
    assert before.strip().count("\n") <= 2, "the two commands must come first"
    install_demo, test = first_block()
    assert "vanta demo" in install_demo and "pip install" in install_demo
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    missing_help, missing_doc = [], []
    for path, command in leaf_commands():
        name = " ".join(path)
        if not command.help or "Example" not in command.help:
            missing_help.append(name)
        if f"vanta {name}" not in README and not re.search(
                rf"vanta (\[--home DIR\] )?{re.escape(name)}", README):
            missing_doc.append(name)
    assert missing_help == []
    assert missing_doc == []
