"""Static HTML reports: an overview, a page per vault, a statement page per follower (that
follower's data only), the fee ledger. Templates only format; everything they show is
computed here. Autoescape is on, so a label or a reason can never inject markup.

The database may be anyone's (``vanta report --db``): page names are made from its ids
safely (``page_stem``), every page is computed before the first is written, and none is
written outside the output directory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box import __version__
from vanta_box.core.errors import InputError
from vanta_box.core.money import ZERO, fmt, fmt_cents, round_cents
from vanta_box.core.timeutil import day_of, fmt_ts, parse_ts
from vanta_box.domain.returns import chain
from vanta_box.reports import figures, state
from vanta_box.reports.files import write_atomic
from vanta_box.resources import templates_dir
from vanta_box.service import fees, performance, statement
from vanta_box.service.books import BATCH_ACCOUNTS, load_books
from vanta_box.store import journal, repo
from vanta_box.store.db import Connection, open_readonly, require_journal


def cents(value: str | None) -> str:
    """Display form of an amount: cents, half-up, thousands separated. Pages are for
    reading; the exact values are in memory/*.json and the statement's --json."""
    if value is None:
        return "—"
    return f"{round_cents(Decimal(value)):,.2f}"


def percent(value: str | None) -> str:
    if value is None:
        return "—"
    return f"{round_cents(Decimal(value) * 100):,.2f} %"


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(templates_dir())),
                      autoescape=select_autoescape(["html"], default=True),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["cents"] = cents
    env.filters["percent"] = percent
    return env


def months(first: date, last: date) -> list[str]:
    """The calendar months from ``first``'s to ``last``'s, as YYYY-MM (the last period is
    9999-11: the next would end in the year 10000)."""
    out = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month) and (year, month) <= (9999, 11):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def last_event_time(conn: Connection) -> str | None:
    row = conn.execute("SELECT ts FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


# A page is named after an id from the database, which may be anyone's file: the id itself
# when it looks like the ids vanta-box makes (upper case, digits, '_' and '-', short, not
# a name Windows reserves), else a slug, a dot and 32 hex digits of the id's SHA-256. So a
# name never holds a separator, '..' or a drive, and no two ids share one, even on a
# case-insensitive disk (a plain name has no lower case letter and no dot; a hashed one has
# a dot).
_PLAIN_ID = re.compile(r"[A-Z0-9_-]{1,64}")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)),
             *(f"LPT{n}" for n in range(10))}


def page_stem(identifier: object) -> str:
    if isinstance(identifier, str) and _PLAIN_ID.fullmatch(identifier) and (
            identifier not in _RESERVED):
        return identifier
    text = identifier if isinstance(identifier, str) else repr(identifier)
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:40] or "id"
    if slug.upper() in _RESERVED:
        slug += "_"
    digest = hashlib.sha256(repr(identifier).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{slug}.{digest[:32]}"


def vault_page(vault_id: object) -> str:
    return f"vault_{page_stem(vault_id)}.html"


def follower_page(account_id: object) -> str:
    return f"followers/{page_stem(account_id)}.html"


def report_file(source: Path, out: Path, at: int | None, *,
                with_wal: bool = False) -> list[Path]:
    """``vanta report``'s work on a database file, read-only (the main file alone unless
    ``with_wal``): the pages as of ``at``, else as of the journal's last event."""
    with open_readonly(source, with_wal=with_wal) as conn:
        require_journal(conn, source)
        found = pages(conn, at if at is not None else last_moment(conn))
    return write_pages(out, found)


def last_moment(conn: Connection) -> int:
    """The time of the journal's last event (what a report is valued at by default)."""
    stamp = last_event_time(conn)
    if stamp is None:
        raise InputError("the journal is empty: nothing to report")
    try:
        return parse_ts(stamp)
    except ValueError:
        raise InputError(f"the journal's last event has no valid time ({stamp[:40]!r}): "
                         "give --at") from None


def render(conn: Connection, out: Path, as_of: int) -> list[Path]:
    """Write every page into ``out``: all of them are computed first, so a report that
    cannot be made (exit 2) writes nothing, and no page is written outside ``out``."""
    return write_pages(out, pages(conn, as_of))


def pages(conn: Connection, as_of: int) -> dict[str, str]:
    """Every page (relative name -> HTML) as of ``as_of``; InputError when the file's
    content (or the moment) cannot be reported."""
    try:
        return _pages(conn, as_of)
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise InputError(f"cannot build the reports as of {_moment(as_of)}: "
                         f"{type(exc).__name__}: {exc}") from None


def _moment(as_of: int) -> str:
    try:
        return fmt_ts(as_of)
    except (OverflowError, ValueError):
        return f"{as_of} µs after 1970"


def write_pages(out: Path, found: dict[str, str]) -> list[Path]:
    root = out.resolve()
    targets = []
    for name, html in found.items():
        path = out / name
        resolved = path.resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            raise InputError(f"{path} would be written outside {out} (a link?): nothing "
                             "written", field="--out")
        targets.append((path, html))
    for path, html in targets:
        write_atomic(path, html)
    return [path for path, _html in targets]


def _pages(conn: Connection, as_of: int) -> dict[str, str]:
    env = _environment()
    from vanta_box.service.proofs import unsigned_head

    common = {"as_of": fmt_ts(as_of), "digest": str(journal.head(conn)),
              "head": unsigned_head(conn), "version": __version__}
    found: dict[str, str] = {}
    folded: set[str] = set()

    def page(name: str, template: str, root: str = "", **context: Any) -> None:
        if name.lower() in folded:  # two vaults with one id: the file was not made by us
            raise ValueError(f"two pages would be named {name}")
        folded.add(name.lower())
        found[name] = env.get_template(template).render(**common, root=root, **context)

    marks = performance.Marks(conn)
    aggregates = _followers(conn, as_of, page, marks)
    summaries = _vaults(conn, as_of, page, marks, aggregates)
    _overview(conn, as_of, page, summaries)
    _fee_ledger(conn, page)
    return found


Page = Callable[..., None]


def _overview(conn: Connection, as_of: int, page: Page,
              summaries: dict[str, dict[str, str | None]]) -> None:
    accounts_in, marks, books = state.each_book(conn, as_of)  # a batch of books at a time
    billed = state.fees_billed(conn)
    managers = state.masters(accounts_in)
    accounts, navs = [], {}
    for a, book in books:
        accounts.append({**state.pnl_account(a, book, marks, billed), "role": a.role,
                         "status": a.status, "cash": fmt(book.cash),
                         "page": follower_page(a.account_id)})
        if managers.get(a.vault_id) == a.account_id:
            navs[a.vault_id] = book.equity(marks)
    rows = {v.vault_id: v for v in repo.vault_rows(conn)}
    vaults = []
    for v in state.pnl_summary(conn, as_of, [], navs)["vaults"]:
        last = repo.last_cycle(conn, v["vault_id"])
        vaults.append({**v, "label": rows[v["vault_id"]].config.get("label"),
                       "last_cycle": last.cycle_id if last else None,
                       "page": vault_page(v["vault_id"]), **summaries[v["vault_id"]]})
    page("index.html", "index.html", vaults=vaults, accounts=accounts)


def _vaults(conn: Connection, as_of: int, page: Page, marks: performance.Marks,
            aggregates: dict[str, dict[str, dict[str, Decimal]]]
            ) -> dict[str, dict[str, str | None]]:
    """Every vault's page; returns each vault's return since inception and max drawdown
    (for the overview)."""
    summaries: dict[str, dict[str, str | None]] = {}
    allocations = {a["vault_id"]: a for a in state.allocation_doc(conn, as_of)["vaults"]}
    overlays = state.overlay_doc(conn, as_of)["overlays"]
    managers = state.masters(repo.accounts(conn))
    now_marks = repo.marks_at(conn, as_of)
    end = day_of(horizon(conn, as_of))
    for row in repo.vault_rows(conn):
        vault_id = row.vault_id
        alloc = allocations[vault_id]
        targets = {s: Decimal(w) for s, w in alloc["weights"].items()}
        points = performance.cycle_points(conn, vault_id, as_of)
        halted = performance.halts(conn, vault_id)
        master = repo.account(conn, managers[vault_id]) if vault_id in managers else None
        held, nav_now, periods = None, None, []
        if master is not None:
            book = load_books(conn, [master])[master.account_id]
            held = figures.positions(book, now_marks, targets)
            nav_now = book.equity(now_marks)
            periods = _vault_periods(conn, master, end, marks)
        navs = figures.nav_charts(vault_id, page_stem(vault_id), points, halted, nav_now, as_of)
        followers = aggregates.get(vault_id, {})
        fee_periods = [{"period": p, "pnl": fmt(v["pnl"]), "fees": fmt(v["fees"])}
                       for p, v in sorted(followers.items())]
        page(vault_page(vault_id), "vault.html",
             vault={"vault_id": vault_id, "label": row.config.get("label"),
                    "status": row.status, "personas": row.config.get("personas", [])},
             allocation={"cycle_id": alloc["cycle_id"],
                         "weights": sorted(alloc["weights"].items()),
                         "cash_weight": alloc["cash_weight"]},
             overlays=[{"persona": None, "factor": None, **o,
                        "left": figures.time_left(parse_ts(o["expires_at"]), as_of)}
                       for o in overlays if o["vault_id"] == vault_id],
             halt=figures.halt_banner(conn, row, halted),
             positions=held, nav_now=None if nav_now is None else fmt(nav_now),
             navs=navs, periods=periods,
             since_inception=_since_inception(periods),
             allocation_chart=(figures.allocation_chart(page_stem(vault_id), targets, held)
                               if held is not None else None),
             fee_chart=figures.pnl_fee_chart(
                 f"fees-{page_stem(vault_id)}", "Followers' PnL against fees", fee_periods),
             fee_periods=fee_periods,
             cycles=figures.cycles_table(conn, points, halted))
        summaries[vault_id] = {"since_inception": _since_inception(periods),
                               "max_drawdown": navs["max_drawdown"]}
    return summaries


def _vault_periods(conn: Connection, master: repo.AccountRow, end: date,
                   marks: performance.Marks) -> list[dict[str, Any]]:
    """The master account's equity at each month's start and end, and its TWR."""
    names = months(day_of(master.onboarded_at), end)
    moments = []
    for name in names:
        start, stop = fees.period_bounds(name)
        moments += [max(start, master.onboarded_at), stop]
    values = performance.boundary_equity(conn, master, moments, marks)
    rows = performance.period_returns(
        (name, values[2 * i], values[2 * i + 1]) for i, name in enumerate(names))
    return [_period_line(r) for r in rows]


def _period_line(r: dict[str, Any]) -> dict[str, Any]:
    return {"period": r["period"], "opening": fmt(r["opening"]), "closing": fmt(r["closing"]),
            "pnl": fmt(r["pnl"]), "twr": None if r["twr"] is None else fmt(r["twr"]),
            **{k: v for k, v in r.items() if k in ("fees", "tracking_error")}}


def _since_inception(periods: list[dict[str, Any]]) -> str | None:
    found = chain([None if p["twr"] is None else Decimal(p["twr"]) for p in periods])
    return None if found is None else fmt(found)


def horizon(conn: Connection, as_of: int) -> int:
    """``as_of``, or the file's last moment (its last event or price) if that is earlier:
    monthly statements stop there, since a later month would only repeat it (and an --at
    in the year 9999 would otherwise ask for ninety thousand of them)."""
    last = last_event_time(conn)
    moments = [parse_ts(last)] if last is not None else []
    newest = conn.execute("SELECT max(ts) FROM prices").fetchone()
    if newest is not None and newest[0] is not None:
        moments.append(int(newest[0]))
    return min(as_of, max(moments, default=as_of))


# A follower's page holds at most this many monthly statements (a century).
MAX_STATEMENTS = 1200


def _followers(conn: Connection, as_of: int, page: Page, marks: performance.Marks
               ) -> dict[str, dict[str, dict[str, Decimal]]]:
    """Every follower's page; returns each vault's followers' PnL and fees per period
    (shadow followers left out: nothing of theirs is real)."""
    end = day_of(horizon(conn, as_of))
    now_marks = repo.marks_at(conn, as_of)
    aggregates: dict[str, dict[str, dict[str, Decimal]]] = {}
    followers = [a for a in repo.accounts(conn) if a.role == "follower"]
    size = performance.prefetch_batch(conn, BATCH_ACCOUNTS)
    for start in range(0, len(followers), size):
        batch = followers[start:start + size]
        with performance.prefetched(conn, batch, marks):  # one journal pass a batch
            for acct in batch:
                _follower(conn, acct, as_of, end, page, marks, now_marks, aggregates)
    return aggregates


def _follower(conn: Connection, acct: repo.AccountRow, as_of: int, end: date, page: Page,
              marks: performance.Marks, now_marks: dict[str, Decimal],
              aggregates: dict[str, dict[str, dict[str, Decimal]]]) -> None:
    periods = months(day_of(acct.onboarded_at), end)
    if len(periods) > MAX_STATEMENTS:
        raise ValueError(f"{acct.account_id!r:.60}'s page would hold {len(periods):,} monthly "
                         f"statements, {periods[0]} to {periods[-1]} (at most "
                         f"{MAX_STATEMENTS:,})")
    statements = [statement.build(conn, acct.account_id, period) for period in periods]
    context = _follower_figures(conn, acct, as_of, statements, marks, now_marks)
    if acct.mode != "shadow":
        into = aggregates.setdefault(acct.vault_id, {})
        for line in context["periods"]:
            totals = into.setdefault(line["period"], {"pnl": ZERO, "fees": ZERO})
            totals["pnl"] += Decimal(line["pnl"])
            totals["fees"] += Decimal(line["fees"])
    fee_whatif = None
    if acct.mode != "shadow":  # the agreement side by side with the others (SPEC §9)
        from vanta_box.service.whatif import whatif

        try:
            fee_whatif = whatif(conn, acct.account_id, None, None)
        except InputError:  # no period ended yet: nothing to compare
            fee_whatif = None
    page(follower_page(acct.account_id), "follower.html", root="../", whatif=fee_whatif,
         account={"account_id": acct.account_id, "vault_id": acct.vault_id,
                  "mode": acct.mode, "status": acct.status,
                  "onboarded_at": fmt_ts(acct.onboarded_at),
                  "shadow": acct.mode == "shadow"},
         statements=list(reversed(statements)), **context)


def _follower_figures(conn: Connection, acct: repo.AccountRow, as_of: int,
                      statements: list[dict[str, Any]], marks: performance.Marks,
                      now_marks: dict[str, Decimal]) -> dict[str, Any]:
    """A follower page's figures: returns per period, drawdown, positions, fee totals,
    the tracking ledger, and the charts of them."""
    known = [s["as_of"] for s in statements]
    if known and all(k is not None and parse_ts(k) <= as_of for k in known):
        # The statements know everything the page does: their tracking cycles, month by
        # month, are the page's ledger (the same computation, not done twice).
        ledger = [c for s in statements for c in s["tracking"]["cycles"]]
    else:
        ledger = performance.tracking_ledger(conn, acct, as_of, marks=marks)
    errors = performance.tracking_errors(ledger, lambda at: at[:7])
    periods = []
    for s in statements:
        r = performance.period_returns([(s["period"], Decimal(s["opening_equity"]),
                                         Decimal(s["closing_equity"]))])[0]
        if s.get("twr") is not None:  # capital flows (SPEC §9): the statement's chained TWR
            r["twr"] = Decimal(s["twr"])
            r["pnl"] -= Decimal(s.get("net_flows") or "0")
        te = errors.get(s["period"])
        periods.append({**_period_line(r), "fees": s["fee"]["fee_due"],
                        "tracking_error": None if te is None else fmt(te)})
    points = [p for p in performance.cycle_points(conn, acct.vault_id, as_of)
              if p.at >= acct.onboarded_at and p.nav is not None]
    equity = performance.equity_at_cycles(conn, acct, points, marks)
    curve = figures.follower_equity_chart(
        page_stem(acct.account_id), [fmt_ts(p.at)[:10] for p in points], equity,
        [p.nav for p in points if p.nav is not None])
    last = ledger[-1] if ledger else None
    vault_w = {x["symbol"]: Decimal(x["vault_weight"]) for x in last["symbols"]} if last else {}
    own_w = {x["symbol"]: Decimal(x["target_weight"]) for x in last["symbols"]} if last else {}
    book = load_books(conn, [acct])[acct.account_id]
    due = sum((Decimal(s["ledger"]["due"]) for s in statements), ZERO)
    paid = sum((Decimal(s["ledger"]["paid"]) for s in statements), ZERO)
    return {
        "periods": periods, "since_inception": _since_inception(periods),
        "curve": curve, "tracking_chart": figures.tracking_chart(page_stem(acct.account_id),
                                                                 ledger),
        "fee_chart": figures.pnl_fee_chart(
            f"fees-{page_stem(acct.account_id)}", "PnL against fees", periods),
        "positions": figures.positions(book, now_marks, vault_w, own_w),
        "fee_totals": {"billed": fmt_cents(due), "paid": fmt_cents(paid),
                       "outstanding": fmt_cents(due - paid)},
        "tracking": {"recent": [figures.tracking_rows(c) for c in
                                reversed(ledger[-figures.TRACKING_IN_FULL:])],
                     "older": [{"cycle_id": c["cycle_id"], "gap": c["gap"],
                                "skipped": c["skipped"]}
                               for c in reversed(ledger[:-figures.TRACKING_IN_FULL])],
                     "in_full": figures.TRACKING_IN_FULL,
                     "definition": performance.TRACKING_DEFINITION},
    }


def _fee_ledger(conn: Connection, page: Page) -> None:
    entries = [{"entry_id": e.entry_id, "kind": e.kind, "account_id": e.account_id,
                "period": e.period, "fee_type": e.fee_type,
                "realized_pnl": fmt_cents(e.realized_pnl), "carry_in": fmt_cents(e.carry_in),
                "perf_fee": fmt_cents(e.perf_fee), "flat_fee": fmt_cents(e.flat_fee),
                "fee_due": fmt_cents(e.fee_due),
                "paid": fmt_cents(fees.paid_total(conn, e.entry_id)), "reason": e.reason}
               for e in repo.fee_entries(conn)]
    page("fees.html", "fees.html", entries=entries, periods=fee_totals(entries))


def fee_totals(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per period, then over all: the sums of the ledger's amounts (a reversal counts
    negative) and what is outstanding (due minus paid)."""
    keys = ("realized_pnl", "perf_fee", "flat_fee", "fee_due", "paid")
    groups: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for e in entries:
        into = groups.setdefault(e["period"], dict.fromkeys(keys, ZERO))
        counts[e["period"]] = counts.get(e["period"], 0) + 1
        sign = -1 if e["kind"] == "reversal" else 1
        for k in keys:
            value = Decimal(e[k])
            # A reversal's fee amounts are already negative; its realized PnL is the
            # reversed entry's, so it counts negative here.
            into[k] += sign * value if k == "realized_pnl" else value
    out = []
    total = dict.fromkeys(keys, ZERO)
    for period in sorted(groups):
        sums = groups[period]
        for k in keys:
            total[k] += sums[k]
        out.append({"period": period, "entries": counts[period],
                    **{k: fmt_cents(v) for k, v in sums.items()},
                    "outstanding": fmt_cents(sums["fee_due"] - sums["paid"])})
    if out:
        out.append({"period": "all periods", "entries": len(entries),
                    **{k: fmt_cents(v) for k, v in total.items()},
                    "outstanding": fmt_cents(total["fee_due"] - total["paid"])})
    return out
