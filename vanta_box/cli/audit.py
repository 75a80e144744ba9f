"""audit verify | digest | export, replay: what an auditor runs on one database file."""

from __future__ import annotations

from pathlib import Path

import click

from vanta_box.cli.common import engine, home_of, progress


def _database(ctx: click.Context, db_file: str | None) -> Path:
    if db_file:
        path = Path(db_file)
        if not path.is_file():
            from vanta_box.core.errors import InputError

            raise InputError(f"{db_file}: no such database file", field="--db")
        return path
    from vanta_box import home as homes

    return homes.require(home_of(ctx)).db_path


db_option = click.option("--db", "db_file", metavar="FILE", default=None,
                         help="The database file (default: the home's vanta.db).")


@click.group()
def audit() -> None:
    """Prove the history is intact: digests, verification, clean exports."""


@audit.command("digest")
@db_option
@click.pass_context
def audit_digest(ctx: click.Context, db_file: str | None) -> None:
    """Print the journal digest SEQ:HEX (publish it; verify against it later).

    \b
    Example:
        vanta audit digest --db vanta.db
    """
    from vanta_box.store import db, journal

    path = _database(ctx, db_file)
    with db.open_readonly(path) as conn:
        db.require_journal(conn, path)
        click.echo(str(journal.head(conn)))


@audit.command("verify")
@db_option
@click.option("--digest", "digests", multiple=True, metavar="SEQ:HEX",
              help="A digest published earlier (repeatable).")
@click.option("--no-replay", is_flag=True, help="Skip the replay (schema, chain, digests only).")
@click.pass_context
def audit_verify(ctx: click.Context, db_file: str | None, digests: tuple[str, ...],
                 no_replay: bool) -> None:
    """Check a database file read-only: schema and triggers against the migrations, the
    whole hash chain, every given digest, and that replay reproduces every projection.

    Exit 0 when all holds; exit 1 naming the first bad row and what is wrong.

    \b
    Example:
        vanta audit verify --db vanta.db --digest 1842:3fa4c0de...
    """
    from vanta_box.core.errors import CheckFailed
    from vanta_box.service.audit import describe, parse_digest, verify

    wanted = [parse_digest(d) for d in digests]
    report = verify(_database(ctx, db_file), wanted, with_replay=not no_replay,
                    progress=progress)
    for line in describe(report):
        click.echo(line)
    if not report.ok:
        raise CheckFailed("verification failed (see above)")


@audit.command("export")
@click.option("--out", required=True, metavar="FILE", help="Where to write the copy.")
@click.pass_context
def audit_export(ctx: click.Context, out: str) -> None:
    """Write a clean copy of vanta.db for an auditor, checked to hold no keystore secret.

    Needs VANTA_PASSPHRASE when the home has a keystore (to know what to look for).

    \b
    Example:
        vanta audit export --out fund-2026-11.db
    """
    from vanta_box.core.errors import InputError
    from vanta_box.keystore import Keystore
    from vanta_box.service.audit import export
    from vanta_box.store import journal

    if not Path(out).resolve().parent.is_dir():
        raise InputError(f"{Path(out).parent}: no such directory", field="--out")
    with engine(ctx) as (eng, home):
        secrets = Keystore(home.keystore_path).secret_values()
        size = export(eng.conn, Path(out), secrets)
        digest = journal.head(eng.conn)
    click.echo(f"exported {out} ({size:,} bytes), digest {digest}; scanned for "
               f"{len(secrets)} secret(s): none found")


@click.command()
@click.option("--db", "db_file", metavar="FILE", required=True, help="The database file.")
@click.option("--out", "out", metavar="FILE", default=None,
              help="Keep the rebuilt database here (default: a temporary file).")
@click.pass_context
def replay(ctx: click.Context, db_file: str, out: str | None) -> None:
    """Rebuild every projection from the journal's inputs into a new file and report, table
    by table, whether it is identical (exit 1 if not). Venues are never asked again: their
    fills are taken from the journal.

    \b
    Example:
        vanta replay --db vanta.db --out rebuilt.db
    """
    import tempfile

    from vanta_box.core.errors import CheckFailed, InputError
    from vanta_box.service.replay import replay as run_replay
    from vanta_box.store import db

    source = _database(ctx, db_file)
    if out and Path(out).exists():
        raise InputError(f"{out} already exists: choose a new file", field="--out")
    if out and not Path(out).resolve().parent.is_dir():
        raise InputError(f"{Path(out).parent}: no such directory", field="--out")
    with db.open_readonly(source) as conn, tempfile.TemporaryDirectory() as tmp:
        db.require_journal(conn, source)
        target = Path(out) if out else Path(tmp) / "replayed.db"
        report = run_replay(conn, target, progress)
    click.echo(f"replayed {report.commands:,} commands into {out or 'a temporary file'}: "
               f"{report.journal_length[1]:,} journal rows ({report.journal_length[0]:,} in "
               "the file)")
    if report.journal_divergence is not None:
        d = report.journal_divergence
        click.echo(f"journal: DIFFERS from row {d.seq}\n  file:     {d.original}\n"
                   f"  replayed: {d.replayed}")
    else:
        click.echo("journal: identical" if report.journal_length[0] == report.journal_length[1]
                   else "journal: lengths differ")
    for table, verdict in report.tables.items():
        click.echo(f"{table}: {verdict}")
    click.echo("identical" if report.identical else "NOT identical")
    if not report.identical and report.version_note():
        click.echo(report.version_note())
    if not report.identical:
        raise CheckFailed("replay does not reproduce the file")


COMMANDS = [audit, replay]
