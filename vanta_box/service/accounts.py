"""Onboarding (API packets) and follower management."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vanta_box.core.canonical import dumps, plain
from vanta_box.core.errors import InputError, Refused
from vanta_box.core.models import Vault
from vanta_box.core.money import ZERO, D, fmt
from vanta_box.core.timeutil import fmt_ts
from vanta_box.inputs.packets import Packet, load_packet
from vanta_box.inputs.vaults import fee_options
from vanta_box.keystore import Keystore, fingerprint
from vanta_box.service import timerules
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.setup import load_vault
from vanta_box.store import repo


def validate_packet(eng: Engine, path: str) -> tuple[Packet, Vault]:
    """Parse a packet and check it against the registry (nothing is written)."""
    packet = load_packet(path)
    raw = packet.raw
    if repo.vault_row(eng.conn, raw.vault_id) is None:
        known = ", ".join(v.vault_id for v in repo.vault_rows(eng.conn)) or "none"
        raise InputError(f"unknown vault {raw.vault_id!r} (known: {known})", source=path,
                         field="vault_id")
    _row, vault = load_vault(eng, raw.vault_id)
    if repo.account(eng.conn, raw.account_id) is not None:
        raise InputError(f"account {raw.account_id!r} is already onboarded", source=path,
                         field="account_id")
    same = repo.account_id_like(eng.conn, raw.account_id)
    if same is not None:
        raise InputError(f"account {raw.account_id!r} differs from {same!r} only in case: ids "
                         "must differ in more than case (pages and files are named by them)",
                         source=path, field="account_id")
    if raw.role == "manager":
        existing = [a for a in repo.accounts(eng.conn, vault.vault_id) if a.role == "manager"]
        if existing:
            raise InputError(f"vault {vault.vault_id} already has a manager account "
                             f"({existing[0].account_id})", source=path, field="role")
    else:
        prefs = raw.persona_prefs if raw.persona_prefs is not None else list(vault.personas)
        if raw.persona_prefs is not None and not raw.persona_prefs:
            raise InputError("an empty list would mirror nothing: name at least one persona, "
                             "or leave persona_prefs out for all of them", source=path,
                             field="persona_prefs")
        for i, persona in enumerate(prefs):
            if persona not in vault.personas:
                raise InputError(f"persona {persona!r} is not one of {vault.vault_id}'s "
                                 f"personas {list(vault.personas)}", source=path,
                                 field=f"persona_prefs[{i}]")
        if len(set(prefs)) != len(prefs):
            raise InputError("personas must not repeat", source=path, field="persona_prefs")
        if raw.fee_agreement is None and vault.mirroring.fee is None:
            raise InputError("a follower needs a fee agreement (the vault defines no default "
                             "mirroring.fee)", source=path, field="fee_agreement")
    mode = ("master" if raw.role == "manager" else
            (raw.mirroring.mode if raw.mirroring and raw.mirroring.mode else None)
            or vault.mirroring.mode)
    if packet.kind != "paper" and mode == "shadow" and "starting_cash" not in \
            packet.public_broker():
        raise InputError("a shadow follower on a real broker needs broker.starting_cash "
                         "for its shadow book", source=path, field="broker.starting_cash")
    return packet, vault


def onboard_command(
    eng: Engine, path: str, at: int | None, now: int, keystore: Keystore | None,
    packet: Packet | None = None,
) -> tuple[Command, Packet]:
    """Validate a packet against the registry; store its secrets in the keystore.

    The onboarding time is ``--at``, else the packet's ``accepted_at``, else now.
    """
    if packet is None:
        packet, vault = validate_packet(eng, path)
    else:
        _row, vault = load_vault(eng, packet.raw.vault_id)
    raw = packet.raw
    # None means "every persona of the vault", resolved at each cycle, so a vault that
    # gains or loses personas keeps its followers on what the master trades.
    personas: list[str] | None
    if raw.role == "manager":
        personas = None
        mode = "master"
        mirroring: dict[str, Any] = {}
        fee = None
    else:
        personas = sorted(raw.persona_prefs) if raw.persona_prefs is not None else None
        m = raw.mirroring
        mode = (m.mode if m and m.mode else None) or vault.mirroring.mode
        mirroring = plain({
            "mode": mode,
            "multiplier": m.multiplier if m else D(1),
            "cap_usd": m.cap_usd if m else None,
            "max_order_notional": m.max_order_notional if m else None,
            "max_position_pct": m.max_position_pct if m else None,
        })
        if raw.fee_agreement is not None:
            terms = raw.fee_agreement
            fee = plain({"type": terms.type, "perf_share": terms.perf_share or ZERO,
                         "flat_usd": terms.flat_usd or ZERO, **terms.options()})
            if terms.collect is not None:  # invoiced at a processor (vanta fees collect)
                fee["collect"] = terms.collect.model_dump(exclude_none=True)
        else:
            vf = vault.mirroring.fee
            assert vf is not None  # validate_packet checked
            fee = plain({"type": vf.type, "perf_share": vf.perf_share, "flat_usd": vf.flat_usd,
                         **fee_options(vf)})
    public = packet.public_broker()
    if packet.kind == "paper" or mode == "shadow":
        starting_cash = D(public["starting_cash"])
    else:
        starting_cash = ZERO
    key_ref = key_fingerprint = None
    secrets = packet.secrets()
    if secrets:
        if keystore is None:
            raise InputError("no keystore available for broker secrets", source=path)
        key_fingerprint = fingerprint(secrets)
        key_ref = keystore.put(raw.account_id, secrets)
    onboarded_at = at if at is not None else (raw.accepted_at or now)
    timerules.after_last_cycle(eng.conn, vault.vault_id, onboarded_at,
                               f"the onboarding of {raw.account_id}")
    payload = {
        "account_id": raw.account_id,
        "vault_id": vault.vault_id,
        "role": raw.role,
        "mode": mode,
        "broker": public,
        "key_ref": key_ref,
        "key_fingerprint": key_fingerprint,
        "persona_prefs": personas,
        "mirroring": mirroring,
        "fee_agreement": fee,
        "accepted_at": fmt_ts(raw.accepted_at) if raw.accepted_at is not None else None,
        "starting_cash": fmt(starting_cash),
    }
    return Command.make("account.onboard", onboarded_at, payload), packet


def onboard_many(eng: Engine, paths: list[str], at: int | None, now: int,
                 keystore: Keystore | None,
                 warn: Callable[[str], None] = lambda _m: None,
                 check: Callable[[str, Packet], None] | None = None) -> list[Command]:
    """Validate every packet, then onboard them all in one transaction (all or none).

    ``check`` asks the venue of each packet whether its keys work (raising to refuse).
    Secrets reach the keystore only once every packet is valid."""
    parsed = [validate_packet(eng, path) for path in paths]
    if keystore is not None and any(p.secrets() for p, _v in parsed):
        keystore.require_passphrase()  # before any venue is asked
    if check is not None:
        for path, (packet, _vault) in zip(paths, parsed, strict=True):
            check(path, packet)
    seen: dict[str, str] = {}
    for path, (packet, _vault) in zip(paths, parsed, strict=True):
        folded = packet.account_id.casefold()
        if folded in seen:
            raise InputError(f"account {packet.account_id!r} is also in {seen[folded]} "
                             "(ids that differ only in case are the same id)",
                             source=path, field="account_id")
        seen[folded] = path
    managers = [p.raw.vault_id for p, _v in parsed if p.raw.role == "manager"]
    if len(managers) != len(set(managers)):
        raise InputError("two manager packets for the same vault")
    commands = []
    for path, (packet, _vault) in zip(paths, parsed, strict=True):
        for message in packet.warnings:
            warn(message)
        command, _ = onboard_command(eng, path, at, now, keystore, packet=packet)
        commands.append(command)
    with eng.batch():
        for command in commands:
            eng.run(command)
    return commands


@handles("account.onboard")
def _onboard(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    if repo.account(eng.conn, p["account_id"]) is not None:
        raise InputError(f"account {p['account_id']!r} is already onboarded")
    if repo.vault_row(eng.conn, p["vault_id"]) is None:
        raise InputError(f"unknown vault {p['vault_id']!r}")
    with eng.tx():
        repo.insert_account(eng.conn, {
            "account_id": p["account_id"],
            "vault_id": p["vault_id"],
            "role": p["role"],
            "mode": p["mode"],
            "broker_kind": p["broker"]["kind"],
            "broker_config": dumps(p["broker"]),
            "key_ref": p["key_ref"],
            "key_fingerprint": p["key_fingerprint"],
            "persona_prefs": dumps(p["persona_prefs"]),
            "mirroring": dumps(p["mirroring"]),
            "fee_agreement": None if p["fee_agreement"] is None else dumps(p["fee_agreement"]),
            "status": "active",
            "onboarded_at": cmd.ts,
            "removed_at": None,
            "starting_cash": p["starting_cash"],
            "cash": p["starting_cash"],
            "realized_pnl": "0",
            "commissions": "0",
        })
    return {"account_id": p["account_id"], "onboarded_at": cmd.ts}


_TRANSITIONS = {
    "follower.pause": ({"active"}, "paused"),
    "follower.resume": ({"paused"}, "active"),
    "follower.remove": ({"active", "paused"}, "removed"),
}


def follower_command(eng: Engine, action: str, account_id: str, at: int) -> Command:
    kind = f"follower.{action}"
    _check_transition(eng, kind, account_id, at)
    return Command.make(kind, at, {"account_id": account_id})


def _check_transition(eng: Engine, kind: str, account_id: str, at: int) -> repo.AccountRow:
    acct = repo.account(eng.conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}")
    if acct.role != "follower":
        raise InputError(f"{account_id} is the manager account of {acct.vault_id}, "
                         "not a follower")
    allowed, _target = _TRANSITIONS[kind]
    if acct.status not in allowed:
        raise Refused(f"follower {account_id} is {acct.status}: cannot "
                      f"{kind.split('.')[1]} it")
    # History is not rewritten from the side: a change is dated after what it changes.
    latest = eng.conn.execute("SELECT max(at) FROM fills WHERE account_id = ?",
                              (account_id,)).fetchone()
    floor = max(acct.onboarded_at, latest[0] if latest and latest[0] is not None else 0)
    if at < floor:
        raise Refused(f"cannot {kind.split('.')[1]} {account_id} at {fmt_ts(at)}: it was "
                      f"onboarded or traded later ({fmt_ts(floor)})")
    timerules.account_change(eng.conn, acct, at, f"{kind.split('.')[1]} of {account_id}")
    return acct


def _transition(eng: Engine, cmd: Command) -> dict[str, Any]:
    acct = _check_transition(eng, cmd.kind, cmd.payload["account_id"], cmd.ts)
    target = _TRANSITIONS[cmd.kind][1]
    billed: list[dict[str, Any]] = []
    with eng.tx():
        repo.set_account_status(eng.conn, acct.account_id, target,
                                cmd.ts if target == "removed" else None)
        repo.add_status_change(eng.conn, acct.account_id, eng.journal.seq, cmd.ts, target)
        if target == "removed":  # SPEC §9 early exit: billed at its removal
            from vanta_box.service.fees import bill_early_exit

            removed = repo.account(eng.conn, acct.account_id)
            assert removed is not None
            billed = bill_early_exit(eng, removed, cmd.ts)
    return {"account_id": acct.account_id, "status": target, "billed": billed}


for _kind in _TRANSITIONS:
    handles(_kind)(_transition)
