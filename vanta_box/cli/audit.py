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


def _own_wal(db_file: str | None, with_wal: bool) -> bool:
    """The home's own database is read with its WAL (it holds the latest commits after a
    crash); a file handed over (--db) is read alone unless --with-wal."""
    return with_wal or db_file is None


def _wal_said(path: Path, with_wal: bool) -> None:
    """On stderr, how a WAL beside the file is treated (nothing when there is none)."""
    from vanta_box.store import db

    note = db.wal_note(path, with_wal)
    if note:
        click.echo(f"note: {path}: {note}", err=True)


db_option = click.option("--db", "db_file", metavar="FILE", default=None,
                         help="The database file (default: the home's vanta.db).")
wal_option = click.option(
    "--with-wal", "with_wal", is_flag=True,
    help="Also read the FILE-wal beside a --db file (default: the main file alone; a WAL "
         "beside it is not part of the file handed over, and is named if present). The "
         "home's own database is always read with its WAL.")


@click.group()
def audit() -> None:
    """Prove the history is intact: digests, verification, clean exports."""


@audit.command("digest")
@db_option
@wal_option
@click.pass_context
def audit_digest(ctx: click.Context, db_file: str | None, with_wal: bool) -> None:
    """Print the journal digest SEQ:HEX (publish it; verify against it later).

    \b
    Example:
        vanta audit digest --db vanta.db
    """
    from vanta_box.store import db, journal

    path = _database(ctx, db_file)
    with_wal = _own_wal(db_file, with_wal)
    with db.open_readonly(path, with_wal=with_wal) as conn:
        db.require_journal(conn, path)
        _wal_said(path, with_wal)
        click.echo(str(journal.head(conn)))


@audit.command("verify")
@db_option
@click.option("--digest", "digests", multiple=True, metavar="SEQ:HEX",
              help="A digest published earlier (repeatable).")
@click.option("--head", "heads", multiple=True, metavar="HEAD.json",
              help="A signed tree head published earlier (`vanta audit head --json`, or a "
                   "statement carrying one; repeatable): the journal must extend it.")
@click.option("--no-replay", is_flag=True, help="Skip the replay (schema, chain, digests only).")
@wal_option
@click.pass_context
def audit_verify(ctx: click.Context, db_file: str | None, digests: tuple[str, ...],
                 heads: tuple[str, ...], no_replay: bool, with_wal: bool) -> None:
    """Check a database file read-only: SQLite's integrity check, schema and triggers
    against the migrations, the whole hash chain and canonical payloads, the stored Merkle
    tree against the rows, every given digest and head, and that replay reproduces every
    projection. The main file alone unless --with-wal; the verdict says which.

    Exit 0 when all holds; exit 1 naming the first bad row and what is wrong.

    \b
    Example:
        vanta audit verify --db vanta.db --digest 1842:3fa4c0de...
        vanta audit verify --db vanta.db --head head-2026-11.json
    """
    from vanta_box.cli.proofs import head_file
    from vanta_box.core.errors import CheckFailed
    from vanta_box.service.audit import describe, parse_digest, verify

    wanted = [parse_digest(d) for d in digests]
    published = [(path, head_file(path, "--head")) for path in heads]
    report = verify(_database(ctx, db_file), wanted, with_replay=not no_replay,
                    with_wal=_own_wal(db_file, with_wal), heads=published,
                    progress=progress)
    for line in describe(report):
        click.echo(line)
    if not report.ok:
        raise CheckFailed("verification failed (see above)")


@audit.command("export")
@click.option("--out", required=True, metavar="FILE", help="Where to write the copy.")
@click.pass_context
def audit_export(ctx: click.Context, out: str) -> None:
    """Write a clean copy of vanta.db for an auditor, checked to hold no secret: none of
    the keystore's, and not the signing key (signing.key).

    Needs VANTA_PASSPHRASE when the home has a keystore (to know what to look for).

    \b
    Example:
        vanta audit export --out fund-2026-11.db
    """
    from vanta_box.core.errors import InputError
    from vanta_box.keystore import Keystore
    from vanta_box.service.audit import export
    from vanta_box.service.proofs import key_secret
    from vanta_box.store import journal

    if not Path(out).resolve().parent.is_dir():
        raise InputError(f"{Path(out).parent}: no such directory", field="--out")
    with engine(ctx) as (eng, home):
        secrets: list[str | bytes] = list(Keystore(home.keystore_path).secret_values())
        signing = key_secret(home.root)
        if signing:
            # the key's hex text, and its raw bytes (a BLOB would hold those)
            secrets = [*secrets, signing, bytes.fromhex(signing)]
        size = export(eng.conn, Path(out), secrets)
        digest = journal.head(eng.conn)
    click.echo(f"exported {out} ({size:,} bytes), digest {digest}; scanned for "
               f"{len(secrets)} secret(s): none found")


@click.command()
@click.option("--db", "db_file", metavar="FILE", required=True, help="The database file.")
@click.option("--out", "out", metavar="FILE", default=None,
              help="Keep the rebuilt database here (default: a temporary file).")
@wal_option
@click.pass_context
def replay(ctx: click.Context, db_file: str, out: str | None, with_wal: bool) -> None:
    """Rebuild every projection from the journal's inputs into a new file and report, table
    by table, whether it is identical (exit 1 if not). Venues are never asked again: their
    fills are taken from the journal. The main file alone unless --with-wal.

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
    with db.open_readonly(source, with_wal=with_wal) as conn, \
            tempfile.TemporaryDirectory() as tmp:
        db.require_journal(conn, source)
        _wal_said(source, with_wal)
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
    note = report.version_note()
    if note:
        click.echo(note)
    if not report.identical:
        raise CheckFailed("replay does not reproduce the file")


COMMANDS = [audit, replay]
