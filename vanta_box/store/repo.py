"""Reads and writes of the projection tables. All SQL of the service layer lives here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import apsw

from vanta_box.core.canonical import dumps
from vanta_box.core.models import Instrument, Overlay, Score
from vanta_box.core.money import D, fmt

# ---------------------------------------------------------------- vaults


@dataclass(frozen=True, slots=True)
class VaultRow:
    vault_id: str
    config: dict[str, Any]
    status: str
    imported_at: int
    peak_nav: Decimal | None
    last_nav: Decimal | None
    last_cycle_at: int | None


def _vault_row(r: tuple[Any, ...]) -> VaultRow:
    return VaultRow(r[0], json.loads(r[1]), r[2], r[3], None if r[4] is None else D(r[4]),
                    None if r[5] is None else D(r[5]), r[6])


_VAULT_COLS = "vault_id, config, status, imported_at, peak_nav, last_nav, last_cycle_at"


def vault_rows(conn: apsw.Connection) -> list[VaultRow]:
    return [_vault_row(r) for r in conn.execute(
        f"SELECT {_VAULT_COLS} FROM vaults ORDER BY vault_id")]


def vault_row(conn: apsw.Connection, vault_id: str) -> VaultRow | None:
    r = conn.execute(f"SELECT {_VAULT_COLS} FROM vaults WHERE vault_id = ?",
                     (vault_id,)).fetchone()
    return _vault_row(r) if r else None


def upsert_vault(conn: apsw.Connection, vault_id: str, config: dict[str, Any], at: int) -> bool:
    """Insert or replace a vault's definition; returns True when it is new."""
    exists = conn.execute("SELECT 1 FROM vaults WHERE vault_id = ?", (vault_id,)).fetchone()
    if exists:
        conn.execute("UPDATE vaults SET config = ?, imported_at = ? WHERE vault_id = ?",
                     (dumps(config), at, vault_id))
        return False
    conn.execute(
        "INSERT INTO vaults (vault_id, config, status, imported_at) VALUES (?, ?, 'active', ?)",
        (vault_id, dumps(config), at),
    )
    return True


def set_vault_state(
    conn: apsw.Connection,
    vault_id: str,
    *,
    status: str,
    peak_nav: Decimal | None,
    last_nav: Decimal | None,
    last_cycle_at: int | None,
) -> None:
    conn.execute(
        "UPDATE vaults SET status = ?, peak_nav = ?, last_nav = ?, last_cycle_at = ?"
        " WHERE vault_id = ?",
        (status, None if peak_nav is None else fmt(peak_nav),
         None if last_nav is None else fmt(last_nav), last_cycle_at, vault_id),
    )




# ---------------------------------------------------------------- instruments and prices


def instruments(conn: apsw.Connection) -> dict[str, Instrument]:
    return {
        s: Instrument(s, a, D(step), D(mn))
        for s, a, step, mn in conn.execute(
            "SELECT symbol, asset_class, lot_step, min_notional FROM instruments ORDER BY symbol")
    }


def upsert_instruments(conn: apsw.Connection, items: Iterable[Instrument]) -> None:
    conn.executemany(
        "INSERT INTO instruments (symbol, asset_class, lot_step, min_notional)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET"
        " asset_class = excluded.asset_class, lot_step = excluded.lot_step,"
        " min_notional = excluded.min_notional",
        [(i.symbol, i.asset_class, fmt(i.lot_step), fmt(i.min_notional)) for i in items],
    )


def upsert_prices(conn: apsw.Connection, rows: Iterable[tuple[str, int, str]]) -> None:
    conn.executemany(
        "INSERT INTO prices (symbol, ts, price) VALUES (?, ?, ?)"
        " ON CONFLICT (symbol, ts) DO UPDATE SET price = excluded.price",
        rows,
    )


def marks_at(conn: apsw.Connection, at: int, symbols: Iterable[str] | None = None,
             times: dict[str, int] | None = None) -> dict[str, Decimal]:
    """The mark of each symbol at ``at``: its newest price with ts <= at (and, into
    ``times`` when given, that price's time)."""
    wanted = sorted(set(symbols)) if symbols is not None else [
        s for (s,) in conn.execute("SELECT symbol FROM instruments ORDER BY symbol")]
    out: dict[str, Decimal] = {}
    query = ("SELECT price, ts FROM prices WHERE symbol = ? AND ts <= ?"
             " ORDER BY ts DESC LIMIT 1")
    for symbol in wanted:
        row = conn.execute(query, (symbol, at)).fetchone()
        if row:
            out[symbol] = D(row[0])
            if times is not None:
                times[symbol] = row[1]
    return out



# ---------------------------------------------------------------- signals and overlays


def put_signal_set(conn: apsw.Connection, vault_id: str, as_of: int, scores_json: str,
                   digest: str) -> None:
    conn.execute(
        "INSERT INTO signal_sets (vault_id, as_of, scores, digest) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (vault_id, as_of) DO UPDATE SET scores = excluded.scores,"
        " digest = excluded.digest",
        (vault_id, as_of, scores_json, digest),
    )


def signal_digest(conn: apsw.Connection, vault_id: str, as_of: int) -> str | None:
    row = conn.execute("SELECT digest FROM signal_sets WHERE vault_id = ? AND as_of = ?",
                       (vault_id, as_of)).fetchone()
    return row[0] if row else None


def latest_signals(conn: apsw.Connection, vault_id: str, at: int
                   ) -> tuple[int, list[Score]] | None:
    row = conn.execute(
        "SELECT as_of, scores FROM signal_sets WHERE vault_id = ? AND as_of <= ?"
        " ORDER BY as_of DESC LIMIT 1", (vault_id, at)).fetchone()
    if not row:
        return None
    scores = [Score(s["symbol"], D(s["score"]), s.get("persona")) for s in json.loads(row[1])]
    return row[0], scores


def overlays(conn: apsw.Connection, vault_id: str | None = None) -> list[Overlay]:
    sql = "SELECT vault_id, kind, persona, factor, set_at, expires_at FROM overlays"
    args: tuple[Any, ...] = ()
    if vault_id is not None:
        sql += " WHERE vault_id = ?"
        args = (vault_id,)
    sql += " ORDER BY vault_id, kind, persona"
    return [Overlay(v, k, s, e, p, D(f))
            for v, k, p, f, s, e in conn.execute(sql, args)]


def put_overlay(conn: apsw.Connection, o: Overlay) -> None:
    conn.execute(
        "INSERT INTO overlays (vault_id, kind, persona, factor, set_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vault_id, kind, persona) DO UPDATE SET"
        " factor = excluded.factor, set_at = excluded.set_at, expires_at = excluded.expires_at",
        (o.vault_id, o.kind, o.persona, fmt(o.factor), o.set_at, o.expires_at),
    )


def delete_overlay(conn: apsw.Connection, vault_id: str, kind: str, persona: str) -> None:
    conn.execute("DELETE FROM overlays WHERE vault_id = ? AND kind = ? AND persona = ?",
                 (vault_id, kind, persona))


# ---------------------------------------------------------------- accounts


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    vault_id: str
    role: str
    mode: str
    broker_kind: str
    broker_config: dict[str, Any]
    key_ref: str | None
    key_fingerprint: str | None
    persona_prefs: tuple[str, ...] | None  # None: every persona of the vault
    mirroring: dict[str, Any]
    fee_agreement: dict[str, Any] | None
    status: str
    onboarded_at: int
    removed_at: int | None
    starting_cash: Decimal
    cash: Decimal
    realized_pnl: Decimal
    commissions: Decimal


_ACCOUNT_COLS = (
    "account_id, vault_id, role, mode, broker_kind, broker_config, key_ref, key_fingerprint,"
    " persona_prefs, mirroring, fee_agreement, status, onboarded_at, removed_at, starting_cash,"
    " cash, realized_pnl, commissions"
)


def _account_row(r: Sequence[Any]) -> AccountRow:
    return AccountRow(
        r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7],
        None if r[8] == "null" else tuple(json.loads(r[8])),
        json.loads(r[9]), None if r[10] is None else json.loads(r[10]), r[11], r[12], r[13],
        D(r[14]), D(r[15]), D(r[16]), D(r[17]),
    )


def accounts(conn: apsw.Connection, vault_id: str | None = None) -> list[AccountRow]:
    """Accounts ordered manager first, then followers by id."""
    sql = f"SELECT {_ACCOUNT_COLS} FROM accounts"
    args: tuple[Any, ...] = ()
    if vault_id is not None:
        sql += " WHERE vault_id = ?"
        args = (vault_id,)
    sql += " ORDER BY vault_id, role = 'follower', account_id"
    return [_account_row(r) for r in conn.execute(sql, args)]


def accounts_at(conn: apsw.Connection, vault_id: str, kinds: Sequence[str]
                ) -> list[AccountRow]:
    """The vault's accounts (not removed, not shadow) at brokers of these kinds."""
    marks = ", ".join("?" * len(kinds))
    return [_account_row(r) for r in conn.execute(
        f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE vault_id = ? AND broker_kind IN"
        f" ({marks}) AND mode != 'shadow' AND status != 'removed' ORDER BY account_id",
        (vault_id, *kinds))]


def account(conn: apsw.Connection, account_id: str) -> AccountRow | None:
    r = conn.execute(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE account_id = ?",
                     (account_id,)).fetchone()
    return _account_row(r) if r else None


def insert_account(conn: apsw.Connection, values: dict[str, Any]) -> None:
    cols = _ACCOUNT_COLS.replace(" ", "").split(",")
    conn.execute(
        f"INSERT INTO accounts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        tuple(values[c] for c in cols),
    )


def set_account_status(conn: apsw.Connection, account_id: str, status: str,
                       removed_at: int | None = None) -> None:
    conn.execute("UPDATE accounts SET status = ?, removed_at = coalesce(?, removed_at)"
                 " WHERE account_id = ?", (status, removed_at, account_id))


def account_id_like(conn: apsw.Connection, account_id: str) -> str | None:
    """An onboarded account whose id equals ``account_id`` but for case, if any."""
    for (other,) in conn.execute("SELECT account_id FROM accounts WHERE lower(account_id) ="
                                 " lower(?)", (account_id,)):  # index accounts_folded
        if other != account_id and other.casefold() == account_id.casefold():
            return str(other)
    return None


def add_status_change(conn: apsw.Connection, account_id: str, seq: int, at: int,
                      status: str) -> None:
    conn.execute("INSERT INTO account_status_changes (account_id, seq, at, status)"
                 " VALUES (?, ?, ?, ?)", (account_id, seq, at, status))


def status_changes(conn: apsw.Connection, account_id: str) -> list[tuple[int, str]]:
    """(at, status) of each pause, resume and removal of the account, in order."""
    return [(at, status) for at, status in conn.execute(
        "SELECT at, status FROM account_status_changes WHERE account_id = ? ORDER BY seq",
        (account_id,))]


def save_account_money(conn: apsw.Connection,
                       rows: Iterable[tuple[str, str, str, str]]) -> None:
    """(cash, realized_pnl, commissions, account_id) for each changed account."""
    conn.executemany(
        "UPDATE accounts SET cash = ?, realized_pnl = ?, commissions = ? WHERE account_id = ?",
        rows,
    )


# ---------------------------------------------------------------- positions


PositionRecord = tuple[str, str, str, str, str, str]  # account, symbol, qty, basis, lots, last


def positions(conn: apsw.Connection, account_ids: Sequence[str] | None = None
              ) -> Iterator[PositionRecord]:
    if account_ids is None:
        yield from conn.execute(
            "SELECT account_id, symbol, qty, cost_basis, lots, last_price FROM positions"
            " ORDER BY account_id, symbol")
        return
    for chunk_start in range(0, len(account_ids), 500):
        chunk = account_ids[chunk_start:chunk_start + 500]
        yield from conn.execute(
            "SELECT account_id, symbol, qty, cost_basis, lots, last_price FROM positions"
            f" WHERE account_id IN ({','.join('?' * len(chunk))}) ORDER BY account_id, symbol",
            tuple(chunk),
        )




def held_symbols(conn: apsw.Connection, account_ids: Sequence[str]) -> set[str]:
    """The symbols of the accounts' position rows (every symbol their books hold)."""
    out: set[str] = set()
    for chunk_start in range(0, len(account_ids), 500):
        chunk = account_ids[chunk_start:chunk_start + 500]
        out.update(symbol for (symbol,) in conn.execute(
            "SELECT DISTINCT symbol FROM positions"
            f" WHERE account_id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
    return out


def save_positions(conn: apsw.Connection, upserts: Sequence[PositionRecord],
                   deletes: Sequence[tuple[str, str]]) -> None:
    if deletes:
        conn.executemany("DELETE FROM positions WHERE account_id = ? AND symbol = ?", deletes)
    if upserts:
        conn.executemany(
            "INSERT INTO positions (account_id, symbol, qty, cost_basis, lots, last_price)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, symbol) DO UPDATE SET"
            " qty = excluded.qty, cost_basis = excluded.cost_basis, lots = excluded.lots,"
            " last_price = excluded.last_price",
            upserts,
        )


# ---------------------------------------------------------------- cycles and allocations


@dataclass(frozen=True, slots=True)
class CycleRow:
    cycle_id: str
    vault_id: str
    at: int
    status: str
    stage_only: bool
    vault_status: str
    nav: Decimal | None
    peak_nav: Decimal | None
    signal_as_of: int | None
    first_seq: int


_CYCLE_COLS = ("cycle_id, vault_id, at, status, stage_only, vault_status, nav, peak_nav,"
               " signal_as_of, first_seq")


def _cycle_row(r: Sequence[Any]) -> CycleRow:
    return CycleRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], None if r[6] is None else D(r[6]),
                    None if r[7] is None else D(r[7]), r[8], r[9])


def cycle(conn: apsw.Connection, cycle_id: str) -> CycleRow | None:
    r = conn.execute(f"SELECT {_CYCLE_COLS} FROM cycles WHERE cycle_id = ?",
                     (cycle_id,)).fetchone()
    return _cycle_row(r) if r else None


def last_cycle(conn: apsw.Connection, vault_id: str) -> CycleRow | None:
    r = conn.execute(f"SELECT {_CYCLE_COLS} FROM cycles WHERE vault_id = ? ORDER BY at DESC"
                     " LIMIT 1", (vault_id,)).fetchone()
    return _cycle_row(r) if r else None


def insert_cycle(conn: apsw.Connection, c: CycleRow) -> None:
    conn.execute(
        f"INSERT INTO cycles ({_CYCLE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (c.cycle_id, c.vault_id, c.at, c.status, int(c.stage_only), c.vault_status,
         None if c.nav is None else fmt(c.nav), None if c.peak_nav is None else fmt(c.peak_nav),
         c.signal_as_of, c.first_seq),
    )


def set_cycle_status(conn: apsw.Connection, cycle_id: str, status: str) -> None:
    conn.execute("UPDATE cycles SET status = ? WHERE cycle_id = ?", (status, cycle_id))


def staged_cycles(conn: apsw.Connection, vault_id: str | None = None) -> list[str]:
    sql = "SELECT cycle_id FROM cycles WHERE status = 'staged'"
    args: tuple[Any, ...] = ()
    if vault_id is not None:
        sql += " AND vault_id = ?"
        args = (vault_id,)
    return [c for (c,) in conn.execute(sql + " ORDER BY at, cycle_id", args)]


def put_allocation(conn: apsw.Connection, cycle_id: str, personas: Sequence[str],
                   weights: dict[str, str], cash_weight: str) -> None:
    conn.execute(
        "INSERT INTO allocations (cycle_id, personas, weights, cash_weight) VALUES (?, ?, ?, ?)",
        (cycle_id, dumps(list(personas)), dumps(weights), cash_weight),
    )


def allocations(conn: apsw.Connection, cycle_id: str
                ) -> list[tuple[list[str], dict[str, str], str]]:
    return [(json.loads(p), json.loads(w), c) for p, w, c in conn.execute(
        "SELECT personas, weights, cash_weight FROM allocations WHERE cycle_id = ?"
        " ORDER BY personas", (cycle_id,))]


# ---------------------------------------------------------------- orders and fills


class OrderRow(NamedTuple):
    order_id: str
    client_order_id: str
    cycle_id: str
    account_id: str
    parent_id: str
    kind: str
    symbol: str
    side: str
    qty: Decimal
    status: str
    filled_qty: Decimal
    reason: str | None


_ORDER_COLS = ("order_id, client_order_id, cycle_id, account_id, parent_id, kind, symbol, side,"
               " qty, status, filled_qty, reason")


def _order_row(r: Sequence[Any]) -> OrderRow:
    return OrderRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], D(r[8]), r[9], D(r[10]),
                    r[11])


def insert_orders(conn: apsw.Connection, rows: Iterable[OrderRow]) -> None:
    conn.executemany(  # a generator: no second copy of every row
        f"INSERT INTO orders ({_ORDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((o.order_id, o.client_order_id, o.cycle_id, o.account_id, o.parent_id, o.kind,
          o.symbol, o.side, fmt(o.qty), o.status, fmt(o.filled_qty), o.reason) for o in rows),
    )


# order_id, client_order_id, cycle_id, account_id, parent_id, kind, symbol, side, qty,
# status, filled_qty, reason -- decimals already as canonical text
SettledOrder = tuple[str, str, str, str, str, str, str, str, str, str, str, str | None]


def settle_orders(conn: apsw.Connection, rows: Sequence[SettledOrder]) -> None:
    """Write executed orders with their final status: a new row for an order that was
    never persisted as staged (the normal cycle), an update for a queued one."""
    conn.executemany(
        f"INSERT INTO orders ({_ORDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status,"
        " filled_qty = excluded.filled_qty, reason = excluded.reason",
        rows,
    )


def upsert_live_order(conn: apsw.Connection, o: OrderRow, status: str, filled_qty: str,
                      reason: str | None, venue_order_id: str | None, avg_price: str | None,
                      updated_at: int) -> None:
    """A live order as the venue last answered (written at submission, then updated)."""
    conn.execute(
        f"INSERT INTO orders ({_ORDER_COLS}, venue_order_id, avg_price, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status,"
        " qty = excluded.qty, filled_qty = excluded.filled_qty,"
        " reason = coalesce(excluded.reason, reason),"
        " venue_order_id = excluded.venue_order_id, avg_price = excluded.avg_price,"
        " updated_at = excluded.updated_at",
        (o.order_id, o.client_order_id, o.cycle_id, o.account_id, o.parent_id, o.kind,
         o.symbol, o.side, fmt(o.qty), status, filled_qty, reason, venue_order_id, avg_price,
         updated_at))


_WORKING = "('submitted', 'unknown', 'accepted', 'partially_filled', 'pending_cancel')"


def working_orders(conn: apsw.Connection, account_id: str | None = None
                   ) -> list[tuple[OrderRow, str | None, str | None]]:
    """Orders still working at a live venue (the account's, or every account's), with
    venue order id and average price."""
    where = "account_id = ? AND " if account_id is not None else ""
    return [(_order_row(r), r[12], r[13]) for r in conn.execute(
        f"SELECT {_ORDER_COLS}, venue_order_id, avg_price FROM orders INDEXED BY"
        f" orders_working WHERE {where}status IN {_WORKING} ORDER BY order_id",
        (account_id,) if account_id is not None else ())]


def order_by_venue_id(conn: apsw.Connection, account_id: str, venue_order_id: str
                      ) -> tuple[OrderRow, str | None, str | None] | None:
    r = conn.execute(
        f"SELECT {_ORDER_COLS}, venue_order_id, avg_price FROM orders INDEXED BY orders_venue"
        " WHERE account_id = ? AND venue_order_id = ?", (account_id, venue_order_id)).fetchone()
    return None if r is None else (_order_row(r), r[12], r[13])


def has_fill(conn: apsw.Connection, account_id: str, at: int, fill_id: str) -> bool:
    """A venue's trade is recorded once: its id comes with its time (the primary key)."""
    return conn.execute("SELECT 1 FROM fills WHERE account_id = ? AND at = ? AND fill_id = ?",
                        (account_id, at, fill_id)).fetchone() is not None


def insert_live_fill(conn: apsw.Connection, row: tuple[Any, ...]) -> None:
    """(fill_id, order_id, account_id, symbol, side, qty, price, commission, realized_pnl,
    at (the venue's time), seq, shadow, recorded_at, fee_currency)."""
    conn.execute(
        "INSERT INTO fills (fill_id, order_id, account_id, symbol, side, qty, price,"
        " commission, realized_pnl, at, seq, shadow, recorded_at, fee_currency)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def venue_cursor(conn: apsw.Connection, account_id: str) -> str | None:
    row = conn.execute("SELECT venue_cursor FROM accounts WHERE account_id = ?",
                       (account_id,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def set_venue_cursor(conn: apsw.Connection, account_id: str, cursor: str | None) -> None:
    conn.execute("UPDATE accounts SET venue_cursor = ? WHERE account_id = ?",
                 (cursor, account_id))


def _cycle_range(cycle_id: str) -> tuple[str, str]:
    # order ids are "cycle/account/symbol": the cycle's orders are one key range
    return cycle_id + "/", cycle_id + "0"


def settled_order_ids(conn: apsw.Connection, cycle_id: str) -> set[str]:
    return {oid for (oid,) in conn.execute(
        "SELECT order_id FROM orders WHERE order_id >= ? AND order_id < ?"
        " AND status != 'staged'", _cycle_range(cycle_id))}


def staged_orders(conn: apsw.Connection, *, cycle_id: str | None = None,
                  vault_id: str | None = None) -> list[OrderRow]:
    # CROSS JOIN keeps orders as the outer loop so the partial index orders_staged is used:
    # otherwise SQLite walks every order of every past cycle of the vault.
    sql = (f"SELECT {', '.join('o.' + c.strip() for c in _ORDER_COLS.split(','))}"
           " FROM orders o INDEXED BY orders_staged CROSS JOIN cycles c"
           " ON c.cycle_id = o.cycle_id WHERE o.status = 'staged'")
    args: list[Any] = []
    if cycle_id is not None:
        sql += " AND o.cycle_id = ?"
        args.append(cycle_id)
    if vault_id is not None:
        sql += " AND c.vault_id = ?"
        args.append(vault_id)
    sql += " ORDER BY c.at, o.cycle_id, o.order_id"
    return [_order_row(r) for r in conn.execute(sql, tuple(args))]


def insert_fills(conn: apsw.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(fill_id, order_id, account_id, symbol, side, qty, price, commission, realized_pnl,
    at, seq, shadow)."""
    conn.executemany(
        "INSERT INTO fills (fill_id, order_id, account_id, symbol, side, qty, price, commission,"
        " realized_pnl, at, seq, shadow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def fills(conn: apsw.Connection, account_id: str, start: int | None = None,
          end: int | None = None) -> list[tuple[Any, ...]]:
    sql = ("SELECT fill_id, order_id, symbol, side, qty, price, commission, realized_pnl, at,"
           " seq, shadow FROM fills WHERE account_id = ?")
    args: list[Any] = [account_id]
    if start is not None:
        sql += " AND at >= ?"
        args.append(start)
    if end is not None:
        sql += " AND at < ?"
        args.append(end)
    return list(conn.execute(sql + " ORDER BY at, seq", tuple(args)))


# ---------------------------------------------------------------- fees


@dataclass(frozen=True, slots=True)
class FeeEntryRow:
    entry_id: str
    kind: str
    account_id: str
    vault_id: str
    period: str
    fee_type: str
    perf_share: Decimal
    flat_usd: Decimal
    realized_pnl: Decimal
    carry_in: Decimal
    net: Decimal
    perf_fee: Decimal
    flat_fee: Decimal
    carry_out: Decimal
    active_days: int
    days_in_period: int
    fee_due: Decimal
    reverses: str | None
    reason: str | None
    at: int
    seq: int
    # SPEC §9 legs (006_flows); entries billed before it: realized basis, no management fee
    basis: str = "realized"
    profit_end: Decimal | None = None
    hwm_in: Decimal = Decimal(0)
    hwm_out: Decimal = Decimal(0)
    management_pct: Decimal = Decimal(0)
    mgmt_base: Decimal = Decimal(0)
    mgmt_fee: Decimal = Decimal(0)


_FEE_COLS = ("entry_id, kind, account_id, vault_id, period, fee_type, perf_share, flat_usd,"
             " realized_pnl, carry_in, net, perf_fee, flat_fee, carry_out, active_days,"
             " days_in_period, fee_due, reverses, reason, at, seq, basis, profit_end, hwm_in,"
             " hwm_out, management_pct, mgmt_base, mgmt_fee")
_FEE_DECIMALS = range(6, 14)


def _fee_row(r: Sequence[Any]) -> FeeEntryRow:
    values: list[Any] = [D(v) if i in _FEE_DECIMALS or i == 16 else v
                         for i, v in enumerate(r[:21])]
    basis, profit_end, *legs = r[21:]
    values += [basis or "realized", None if profit_end is None else D(profit_end),
               *(D(v) if v is not None else Decimal(0) for v in legs)]
    return FeeEntryRow(*values)


def fee_entries(conn: apsw.Connection, account_id: str | None = None,
                period: str | None = None) -> list[FeeEntryRow]:
    sql = f"SELECT {_FEE_COLS} FROM fee_entries WHERE 1 = 1"
    args: list[Any] = []
    if account_id is not None:
        sql += " AND account_id = ?"
        args.append(account_id)
    if period is not None:
        sql += " AND period = ?"
        args.append(period)
    return [_fee_row(r) for r in conn.execute(sql + " ORDER BY seq", tuple(args))]


def fee_entry(conn: apsw.Connection, entry_id: str) -> FeeEntryRow | None:
    r = conn.execute(f"SELECT {_FEE_COLS} FROM fee_entries WHERE entry_id = ?",
                     (entry_id,)).fetchone()
    return _fee_row(r) if r else None


def insert_fee_entry(conn: apsw.Connection, e: FeeEntryRow) -> None:
    conn.execute(
        f"INSERT INTO fee_entries ({_FEE_COLS}) VALUES ({', '.join('?' * 28)})",
        (e.entry_id, e.kind, e.account_id, e.vault_id, e.period, e.fee_type, fmt(e.perf_share),
         fmt(e.flat_usd), fmt(e.realized_pnl), fmt(e.carry_in), fmt(e.net), fmt(e.perf_fee),
         fmt(e.flat_fee), fmt(e.carry_out), e.active_days, e.days_in_period, fmt(e.fee_due),
         e.reverses, e.reason, e.at, e.seq, e.basis,
         None if e.profit_end is None else fmt(e.profit_end), fmt(e.hwm_in), fmt(e.hwm_out),
         fmt(e.management_pct), fmt(e.mgmt_base), fmt(e.mgmt_fee)),
    )


def fee_payments(conn: apsw.Connection, entry_id: str) -> list[tuple[str, Decimal, str, int]]:
    return [(p, D(a), ref, at) for p, a, ref, at in conn.execute(
        "SELECT payment_id, amount, ref, at FROM fee_payments WHERE entry_id = ? ORDER BY seq",
        (entry_id,))]


def fee_payment_seqs(conn: apsw.Connection, entry_id: str) -> dict[str, int]:
    """payment id -> the journal row that recorded it (statements cite it)."""
    return {str(p): int(seq) for p, seq in conn.execute(
        "SELECT payment_id, seq FROM fee_payments WHERE entry_id = ?", (entry_id,))}


def insert_fee_payment(conn: apsw.Connection, payment_id: str, entry_id: str, amount: Decimal,
                       ref: str, at: int, seq: int) -> None:
    conn.execute("INSERT INTO fee_payments (payment_id, entry_id, amount, ref, at, seq)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (payment_id, entry_id, fmt(amount), ref, at, seq))


# ---------------------------------------------------------------- fee invoices


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    entry_id: str
    processor: str
    ref: str
    url: str | None
    amount: Decimal
    currency: str
    state: str
    paid: Decimal
    at: int
    seq: int


_INVOICE_COLS = "entry_id, processor, ref, url, amount, currency, state, paid, at, seq"


def _invoice(r: Sequence[Any]) -> InvoiceRow:
    return InvoiceRow(r[0], r[1], r[2], r[3], D(r[4]), r[5], r[6], D(r[7]), r[8], r[9])


def fee_invoice(conn: apsw.Connection, entry_id: str) -> InvoiceRow | None:
    row = conn.execute(f"SELECT {_INVOICE_COLS} FROM fee_invoices WHERE entry_id = ?",
                       (entry_id,)).fetchone()
    return _invoice(row) if row else None


def fee_invoices(conn: apsw.Connection) -> list[InvoiceRow]:
    return [_invoice(r) for r in conn.execute(
        f"SELECT {_INVOICE_COLS} FROM fee_invoices ORDER BY seq")]


def insert_fee_invoice(conn: apsw.Connection, row: InvoiceRow) -> None:
    conn.execute(f"INSERT INTO fee_invoices ({_INVOICE_COLS})"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (row.entry_id, row.processor, row.ref, row.url, fmt(row.amount), row.currency,
                  row.state, fmt(row.paid), row.at, row.seq))


def set_fee_invoice(conn: apsw.Connection, entry_id: str, state: str, paid: Decimal) -> None:
    conn.execute("UPDATE fee_invoices SET state = ?, paid = ? WHERE entry_id = ?",
                 (state, fmt(paid), entry_id))


# ---------------------------------------------------------------- capital flows


class FlowRow(NamedTuple):
    account_id: str
    seq: int
    at: int
    amount: Decimal
    kind: str
    source: str
    ref: str | None


def insert_flow(conn: apsw.Connection, account_id: str, seq: int, at: int, amount: Decimal,
                source: str, ref: str | None) -> None:
    conn.execute("INSERT INTO flows (account_id, seq, at, amount, kind, source, ref)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (account_id, seq, at, fmt(amount),
                  "deposit" if amount > 0 else "withdrawal", source, ref))


def flows(conn: apsw.Connection, account_id: str | None = None) -> list[FlowRow]:
    """Flows (of one account, or of every account), by account then journal row."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flows'").fetchone()
    if not exists:  # a file older than 006 (an auditor's, opened read-only)
        return []
    sql = "SELECT account_id, seq, at, amount, kind, source, ref FROM flows"
    args: tuple[Any, ...] = ()
    if account_id is not None:
        sql += " WHERE account_id = ?"
        args = (account_id,)
    return [FlowRow(a, s, t, D(x), k, src, ref)
            for a, s, t, x, k, src, ref in conn.execute(sql + " ORDER BY account_id, seq", args)]
