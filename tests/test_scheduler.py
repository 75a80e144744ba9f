"""The scheduler: what is due when (pure), and `vanta run --once` doing it."""

from __future__ import annotations

from vanta_box import scheduler
from vanta_box.core.timeutil import DAY_US, parse_ts

T = parse_ts("2026-11-03T10:00:00Z")
DAY = scheduler.Schedule()


def clock(last: str | None, schedule: scheduler.Schedule = DAY) -> scheduler.VaultClock:
    return scheduler.VaultClock("V", schedule, parse_ts(last) if last else None,
                                parse_ts("2026-10-01T00:00:00Z"))


def test_a_cycle_is_due_at_the_latest_slot_only() -> None:
    jobs = scheduler.due(T, [clock("2026-11-01T00:00:00Z")], [], [])
    # two slots were missed (Nov 2, Nov 3): only the latest runs, at its own time
    assert [(j.kind, j.at) for j in jobs] == [("cycle", parse_ts("2026-11-03T00:00:00Z"))]
    assert scheduler.due(T, [clock("2026-11-03T00:00:00Z")], [], []) == []


def test_schedule_with_an_offset_and_a_shorter_period() -> None:
    every_6h = scheduler.Schedule(every=DAY_US // 4, offset=3600 * 10**6)  # 01:00, 07:00 ...
    (job,) = scheduler.due(T, [clock(None, every_6h)], [], [])
    assert job.at == parse_ts("2026-11-03T07:00:00Z")


def test_fees_for_the_month_that_ended_and_overlay_expiry() -> None:
    now = parse_ts("2026-12-01T00:05:00Z")
    jobs = scheduler.due(now, [], [parse_ts("2026-11-30T00:00:00Z")], ["2026-11", "2026-10"])
    # every unbilled ended month, oldest first (the carry needs each of them)
    assert [(j.kind, j.period) for j in jobs] == [
        ("expire", None), ("fees", "2026-10"), ("fees", "2026-11")]
    assert scheduler.due(now, [], [], []) == []
    assert scheduler.due(now, [], [], ["2026-12"]) == []  # not ended yet
    january = scheduler.previous_month(parse_ts("2027-01-15T00:00:00Z"))
    assert january == ("2026-12", parse_ts("2027-01-01T00:00:00Z"))


def test_run_once_cycles_bills_and_replays_identically(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from tests.conftest import run_vanta
    from vanta_box import home as homes
    from vanta_box.service import demo

    root = tmp_path / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    home = ["--home", str(root)]
    first = run_vanta(*home, "run", "--once", "--at", "2026-11-21T00:00:00Z")
    assert first.code == 0 and "V_CORE@2026-11-21T00:00:00Z: done" in first.out
    assert "nothing due" in run_vanta(*home, "run", "--once", "--at",
                                      "2026-11-21T05:00:00Z").out
    run_vanta(*home, "overlay", "set", "V_CORE", "--flip", "--ttl", "2h", "--at",
              "2026-11-21T06:00:00Z")
    later = run_vanta(*home, "run", "--once", "--at", "2026-12-01T00:00:10Z")
    assert "1 overlay(s) expired" in later.out and "fee entries for 2026-11" in later.out
    verify = run_vanta("audit", "verify", "--db", str(Path(root) / "vanta.db"))
    assert verify.code == 0, verify.out
