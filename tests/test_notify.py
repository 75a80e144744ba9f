"""Notifications through apprise: each new alert sent once to a loopback `json://`
endpoint, journaled as sent (by the URL's id, never the URL), a failed delivery an alert
of its own and exit 3, and no URL token anywhere in the home but the keystore."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import T0, T1, T2, T3, Home
from tests.test_alerts import alerts_json, by_kind, journal, scenario

PASS = {"VANTA_PASSPHRASE": "a passphrase for the notification test"}
TOKEN = "tok-7Hq2ZpX9-notify-SECRET"  # distinctive: it must turn up nowhere but the keystore


class Hook:
    """A loopback HTTP server that records every POST; ``failing`` paths answer 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.failing: set[str] = set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                failed = any(part in self.path for part in hook.failing)
                if not failed:
                    hook.posts.append((self.path, json.loads(body)))
                self.send_response(500 if failed else 200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    from vanta_box.service import notify

    monkeypatch.setattr(notify, "PAUSES", (0.0, 0.0))  # retries without waiting


def test_each_new_alert_is_sent_once_and_no_token_leaves_the_keystore(
        setup_vault: Any, hook: Hook) -> None:
    home = scenario(setup_vault)
    url = hook.url(f"hooks/{TOKEN}")
    added = home.ok("notify", "add", url, env=PASS)
    assert TOKEN not in added.out + added.err and "json://127.0.0.1:" in added.out
    listed = home.ok("notify", "list", env=PASS)
    assert TOKEN not in listed.out and listed.out.count("json://") == 1

    first = home.vanta("run", "--once", "--at", T0, env=PASS)
    assert first.code == 4, first.out + first.err
    assert [p for p, _body in hook.posts] == [f"/hooks/{TOKEN}"]  # one alert: the rejects
    body = hook.posts[0][1]
    assert body["type"] == "warning" and "reject" in body["title"]
    assert "insufficient_cash" in body["message"] and "vanta alerts ack" in body["message"]

    assert home.vanta("run", "--once", "--at", T1, env=PASS).code == 0
    assert len(hook.posts) == 1  # the same rejects: not sent again

    third = home.vanta("run", "--once", "--at", T2, env=PASS)
    assert third.code == 4, third.out + third.err
    assert len(hook.posts) == 2 and hook.posts[1][1]["type"] == "failure"  # critical
    assert "halted" in hook.posts[1][1]["message"]
    assert home.vanta("run", "--once", "--at", T3, env=PASS).code == 0
    assert len(hook.posts) == 2

    listed_alerts = alerts_json(home)
    from vanta_box.service.notify import url_id

    for kind in ("reject", "vault.halted"):
        assert by_kind(listed_alerts, kind)["notified"] == [url_id(url)]
    sent = [e["payload"] for e in journal(home) if e["kind"] == "alert.notified"]
    assert [d["url_id"] for p in sent for d in p["deliveries"]] == [url_id(url)] * 2
    assert home.ok("audit", "verify").code == 0
    _no_token_in(home, [TOKEN, url])


def _no_token_in(home: Home, needles: list[str]) -> None:
    scanned = 0
    for path in home.root.rglob("*"):
        if path.is_file() and path.name != "keystore":
            data = path.read_bytes()
            scanned += 1
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} found in {path}"
    assert scanned >= 8


def test_a_failed_notification_is_an_alert_and_exit_3(setup_vault: Any, hook: Hook) -> None:
    home = scenario(setup_vault)
    good, bad = hook.url(f"ok/{TOKEN}"), hook.url(f"down/{TOKEN}-2")
    home.ok("notify", "add", good, env=PASS)
    home.ok("notify", "add", bad, env=PASS)
    hook.failing.add("/down/")
    run = home.vanta("run", "--once", "--at", T0, env=PASS)
    assert run.code == 3, run.out + run.err  # exit 3 wins over 4: an output was not written
    assert TOKEN not in run.out + run.err
    from vanta_box.service.notify import TRIES, url_id

    failed = by_kind(alerts_json(home), "notify.failed")
    assert (failed["key"], failed["severity"], failed["detail"]["error"]) == (
        url_id(bad), "warning", f"HTTP 500 after {TRIES} tries")
    assert len(hook.posts) == 1  # the good URL got the rejects
    # the next run: the failure reaches the manager through the other URL; the bad one
    # is tried again with what it has not had (and fails again)
    again = home.vanta("run", "--once", "--at", T1, env=PASS)
    assert again.code == 3
    assert [b["title"] for _p, b in hook.posts][1].startswith("vanta-box WARNING: notify.failed")
    # the endpoint is back: it gets what it missed, and the failure is resolved
    hook.failing.clear()
    assert home.vanta("run", "--once", "--at", T2, env=PASS).code == 4  # the halt
    down = [b["title"] for p, b in hook.posts if p.startswith("/down/")]
    assert any("reject" in t for t in down) and any("vault.halted" in t for t in down)
    assert by_kind(alerts_json(home, "--all"), "notify.failed")["state"] == "resolved"
    assert home.ok("audit", "verify").code == 0
    _no_token_in(home, [TOKEN])


def test_notify_add_list_remove_test(setup_vault: Any, hook: Hook) -> None:
    home: Home = setup_vault()
    url = hook.url(f"t/{TOKEN}")
    assert home.vanta("notify", "add", url, env={"VANTA_PASSPHRASE": ""}).code == 2
    bad = home.vanta("notify", "add", f"nosuchservice://{TOKEN}", env=PASS)
    assert bad.code == 2 and TOKEN not in bad.err and "nosuchservice" in bad.err
    assert home.vanta("notify", "test", env=PASS).code == 1  # nothing to test
    home.ok("notify", "add", url, env=PASS)
    assert home.vanta("notify", "add", url, env=PASS).code == 1  # already there
    tested = home.ok("notify", "test", env=PASS)
    assert "sent to json://127.0.0.1:" in tested.out and hook.posts[-1][1]["type"] == "info"
    hook.failing.add("/t/")
    failing = home.vanta("notify", "test", env=PASS)
    assert failing.code == 3 and "HTTP 500" in failing.out + failing.err
    from vanta_box.service.notify import url_id

    doc = json.loads(home.ok("notify", "list", "--json", env=PASS).out)
    assert doc == [{"url_id": url_id(url), "url": url.split("/t/")[0] + "/…"}]
    assert home.vanta("notify", "remove", "feedfacecafe", env=PASS).code == 2
    removed = home.ok("notify", "remove", url_id(url), env=PASS)
    assert "removed" in removed.out and TOKEN not in removed.out
    assert "no notification URLs" in home.ok("notify", "list", env=PASS).out
    _no_token_in(home, [TOKEN])


def test_without_the_passphrase_the_run_says_so_and_exits_3(setup_vault: Any,
                                                           hook: Hook) -> None:
    home = scenario(setup_vault)
    home.ok("notify", "add", hook.url(f"x/{TOKEN}"), env=PASS)
    run = home.vanta("run", "--once", "--at", T0, env={"VANTA_PASSPHRASE": ""})
    assert run.code == 3 and "VANTA_PASSPHRASE" in run.err
    assert by_kind(alerts_json(home), "notify.failed")["key"] == "keystore"
    assert hook.posts == []
    # with it, the next run sends what waited, and the failure is resolved
    assert home.vanta("run", "--once", "--at", T1, env=PASS).code == 0
    assert len(hook.posts) == 1
    assert [a["state"] for a in alerts_json(home, "--all") if a["kind"] == "notify.failed"
            ] == ["resolved"]


def test_redaction() -> None:
    from vanta_box.service.notify import redact

    assert redact("json://127.0.0.1:8080/hook-TOKEN?x=1") == "json://127.0.0.1:8080/…"
    assert redact("mailto://user:pw@gmail.com") == "mailto://…@gmail.com/…"
    assert redact("tgram://123456:ABCDEFSECRET/-1001") == "tgram://…"
    assert redact("slack://TokenA/TokenB/TokenC") == "slack://…"
    assert redact("ntfy://ntfy.sh/secret-topic") == "ntfy://ntfy.sh/…"
    assert redact("not a url") == "…"


def test_help_does_not_import_apprise() -> None:
    code = ("import sys; from vanta_box.cli import cli; "
            "sys.argv = ['vanta', '--help']\n"
            "try:\n    cli.main(prog_name='vanta')\nexcept SystemExit:\n    pass\n"
            "assert 'apprise' not in sys.modules, 'apprise imported by --help'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_the_keystore_keeps_the_urls_encrypted(tmp_path: Any) -> None:
    from vanta_box.core.errors import KeystoreError
    from vanta_box.keystore import Keystore

    path = tmp_path / "keystore"
    store = Keystore(path, passphrase="pw")
    assert not store.has_notify_urls() and store.notify_urls() == []
    urls = [f"json://127.0.0.1:9/{TOKEN}", f"tgram://{TOKEN}-bot/42"]
    store.set_notify_urls(urls)
    assert TOKEN not in path.read_text()
    assert Keystore(path, passphrase="pw").notify_urls() == urls
    assert Keystore(path).has_notify_urls()  # known without the passphrase
    assert set(urls) <= set(Keystore(path, passphrase="pw").secret_values())  # export scan
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore(path, passphrase="nope").notify_urls()
    store.set_notify_urls([])
    assert not Keystore(path, passphrase="pw").has_notify_urls()
