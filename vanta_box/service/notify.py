"""Notifications through apprise (e-mail, Telegram, Slack, Discord, ntfy, webhooks…).

The URLs hold tokens: they live in the keystore only. Everywhere else — the journal, the
state files, the console, error messages — a URL is its *id* (12 hex digits of its
SHA-256) and a redacted form (scheme and host, never a user, password, path or query).
apprise's own log lines name URLs, so its logger is kept to ourselves: only the kind of a
failure (an HTTP status, a connection error) is ever repeated.

Each new alert is one notification per URL, sent once: what was sent is journaled
(``alert.notified``), so the next run does not send it again. A delivery is tried
``TRIES`` times with a short pause, each try bounded by apprise's socket timeouts; a URL
that still fails stops there (the rest wait for the next run) and the failure is itself
an alert. Sending happens after the run's work has committed, outside the home's lock
and outside any transaction: a notification never holds up trading.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vanta_box.core.errors import InputError

TRIES = 3
PAUSES = (0.5, 2.0)  # seconds between tries, not money
SOCKET_TIMEOUT = 5.0  # seconds (connect, and read), per try
KEYSTORE_ID = "keystore"  # the "URL id" of a failure to read the URLs at all


def url_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


_HOSTLIKE = re.compile(r"^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])$")


def redact(url: str) -> str:
    """``json://127.0.0.1:8080/…`` for ``json://127.0.0.1:8080/hook-TOKEN``; a URL whose
    host part is itself a token (``tgram://BOTTOKEN/CHAT``) shows its scheme alone."""
    scheme, sep, _rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme):
        return "…"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
        user = "…@" if parts.username or parts.password else ""
    except ValueError:
        return f"{scheme}://…"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not host or not _HOSTLIKE.match(netloc.rsplit(":", 1)[0] if port else netloc):
        return f"{scheme}://…"
    return f"{scheme}://{user}{netloc}/…"


def shown(url: str) -> str:
    return f"{redact(url)} (id {url_id(url)})"


def _apprise() -> Any:
    """apprise, imported when a notification is needed (`vanta --help` stays fast), its
    log lines (which name URLs) kept out of the console."""
    logger = logging.getLogger("apprise")
    if not getattr(logger, "_vanta_quiet", False):
        logger.propagate = False
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.WARNING)
        logger._vanta_quiet = True  # type: ignore[attr-defined]
    try:
        import apprise
    except ImportError:  # pragma: no cover - a dependency; named if an install lacks it
        raise InputError("notifications need the apprise package (pip install apprise)"
                         ) from None
    return apprise


def _instantiate(url: str) -> Any:
    apprise = _apprise()
    asset = apprise.AppriseAsset(storage_mode="memory")  # nothing of a URL on disk
    return apprise.Apprise.instantiate(url, asset=asset)


def check(url: str) -> str:
    """The URL, stripped, if apprise can send to it (else exit 2 naming its scheme only)."""
    text = url.strip()
    scheme = text.partition("://")[0] if "://" in text else ""
    if not scheme or _instantiate(text) is None:
        what = f"scheme {scheme[:20]!r}" if scheme else "no scheme://"
        raise InputError(f"not a notification URL apprise can send to ({what}); see apprise's "
                         "list of services, e.g. mailto://, tgram://, ntfy://, json://",
                         field="URL")
    return text


@dataclass(frozen=True)
class Message:
    alert_id: str
    severity: str  # info | warning | critical
    title: str
    body: str


@dataclass
class Outcome:
    """What one URL got: the alerts delivered, and those that failed (with why)."""

    url_id: str
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tries: int = 0
    error: str | None = None

    def deliveries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.sent:
            out.append({"url_id": self.url_id, "alert_ids": self.sent, "ok": True,
                        "tries": self.tries, "error": None})
        if self.failed:
            out.append({"url_id": self.url_id, "alert_ids": self.failed, "ok": False,
                        "tries": self.tries, "error": self.error})
        return out


class _Failures(logging.Handler):
    """apprise's warnings while a notification is sent, reduced to their kind."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kinds: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        status = re.search(r"error=(\d{3})", text)
        if status:
            self.kinds.append(f"HTTP {status.group(1)}")
        elif "connection" in text.lower():
            self.kinds.append("connection error")
        elif "timeout" in text.lower() or "timed out" in text.lower():
            self.kinds.append("timeout")
        else:
            self.kinds.append("refused by the service")


_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}


def send(url: str, messages: list[Message],
         pause: Callable[[float], None] = time.sleep) -> Outcome:
    """Send each message to ``url`` (each up to TRIES times); stop at the first that
    cannot be delivered."""
    outcome = Outcome(url_id(url))
    plugin = _instantiate(url) if messages else None
    if messages and plugin is None:
        outcome.failed = [m.alert_id for m in messages]
        outcome.error = "not a URL apprise can send to"
        return outcome
    for n, message in enumerate(messages):
        ok, tries, error = _deliver(plugin, message, pause)
        outcome.tries += tries
        if ok:
            outcome.sent.append(message.alert_id)
            continue
        outcome.failed = [m.alert_id for m in messages[n:]]
        outcome.error = error
        break
    return outcome


def _deliver(plugin: Any, message: Message, pause: Callable[[float], None]
             ) -> tuple[bool, int, str]:
    apprise = _apprise()
    for attr in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(plugin, attr):
            setattr(plugin, attr, SOCKET_TIMEOUT)
    logger = logging.getLogger("apprise")
    failures = _Failures()
    logger.addHandler(failures)
    error = "delivery failed"
    try:
        for attempt in range(TRIES):
            if attempt:
                pause(PAUSES[min(attempt - 1, len(PAUSES) - 1)])
            failures.kinds.clear()
            try:
                ok = bool(plugin.notify(body=message.body, title=message.title,
                                        notify_type=getattr(apprise.NotifyType,
                                                            _TYPES[message.severity].upper())))
            except Exception as exc:  # a plugin's own bug must not stop the run
                ok, failures.kinds[:] = False, [type(exc).__name__]
            if ok:
                return True, attempt + 1, ""
            error = failures.kinds[-1] if failures.kinds else "delivery failed"
    finally:
        logger.removeHandler(failures)
    return False, TRIES, f"{error} after {TRIES} tries"


def test_message() -> Message:
    return Message("test", "info", "vanta-box: test notification",
                   "This is a test from `vanta notify test`: notifications reach you.")
