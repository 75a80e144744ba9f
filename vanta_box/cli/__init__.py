"""The `vanta` command line: one click group, thin commands (open, call one function, echo).

Heavy modules (pydantic, apsw, brokers) are imported inside the commands so that
`vanta --help` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from vanta_box import __version__
from vanta_box.cli.common import State


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", "home", metavar="DIR", default=None,
              help="Home directory (default: $VANTA_HOME, else the user data directory).")
@click.version_option(__version__, prog_name="vanta")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """vanta-box: run strategy vaults, mirror them into followers' accounts, bill fees, and
    prove every step to an auditor from one SQLite file.

    \b
    Example:
        vanta demo --home ./vanta-demo
        vanta --home ./vanta-demo status
    """
    ctx.obj = State(home)


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = ctx.find_object(State)
        if state is not None:
            state.home_option = value


def _leaves(group: click.Group) -> list[click.Command]:
    out: list[click.Command] = []
    for command in group.commands.values():
        out += _leaves(command) if isinstance(command, click.Group) else [command]
    return out


def _register() -> None:
    from vanta_box.cli import (
        accounts,
        alerts,
        audit,
        fees,
        flows,
        outputs,
        proofs,
        setup,
        trading,
    )

    for module in (setup, accounts, trading, flows, fees, outputs, audit, proofs, alerts):
        for command in module.COMMANDS:
            cli.add_command(command)
    # `--home DIR` is also accepted after the command's name (vanta status --home DIR).
    for command in _leaves(cli):
        if not any("--home" in getattr(p, "opts", ()) for p in command.params):
            command.params.append(click.Option(
                ["--home"], metavar="DIR", expose_value=False, callback=_set_home,
                help="Home directory (same as the global --home)."))


_register()


def main() -> None:
    from vanta_box.cli.common import OUTPUT_FAILURES
    from vanta_box.core.errors import VantaError

    OUTPUT_FAILURES.clear()
    try:
        # without standalone mode, click returns the code a command exits with (ctx.exit)
        code = cli.main(prog_name="vanta", standalone_mode=False)
        if OUTPUT_FAILURES:
            for message in OUTPUT_FAILURES:
                click.echo(f"error: {message}", err=True)
            sys.exit(3)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except VantaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("VANTA_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} "
                   "(set VANTA_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
