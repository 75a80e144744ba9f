"""The encrypted keystore: broker secrets, notification URLs and payment processors' keys,
never inside vanta.db.

One JSON file ``<home>/keystore`` (mode 0600). The key is derived with scrypt from the
``VANTA_PASSPHRASE`` environment variable and a random salt kept in the file; each record is
AES-256-GCM with a fresh 96-bit nonce and the account id as associated data, so a record
moved to another account fails to decrypt. A check record tells a wrong passphrase from a
damaged record. The notification URLs (apprise URLs hold tokens) are one record of their
own, ``notify``, outside the accounts' records and bound to its own associated data; so are
the payment processors' keys and addresses (``processors``, `vanta processor set`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vanta_box.core.canonical import dumps
from vanta_box.core.errors import KeystoreError

PASSPHRASE_ENV = "VANTA_PASSPHRASE"
_CHECK_AAD = b"vanta-keystore-check"
_CHECK_PLAINTEXT = b"vanta-box keystore v1"
_NOTIFY_AAD = b"vanta-notify-urls"
_PROCESSORS_AAD = b"vanta-payment-processors"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def fingerprint(secrets: dict[str, str]) -> str:
    """A short, non-reversible identifier of a set of secrets (shown, never the secret)."""
    return hashlib.sha256(dumps(secrets).encode()).hexdigest()[:12]


class Keystore:
    def __init__(self, path: Path, passphrase: str | None = None) -> None:
        self.path = path
        self._passphrase = passphrase if passphrase is not None else os.environ.get(
            PASSPHRASE_ENV)
        self._key: bytes | None = None

    def require_passphrase(self) -> str:
        return self._require_passphrase()

    def _require_passphrase(self) -> str:
        if not self._passphrase:
            raise KeystoreError(
                f"the keystore needs a passphrase: set {PASSPHRASE_ENV} in the environment")
        return self._passphrase

    def _derive(self, salt: bytes) -> bytes:
        kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
        return kdf.derive(self._require_passphrase().encode())

    def _load(self) -> dict[str, object]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"{self.path}: unreadable keystore ({exc})") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise KeystoreError(f"{self.path}: not a vanta-box keystore")
        return data

    def _key_for(self, data: dict[str, object]) -> bytes:
        if self._key is not None:
            return self._key
        kdf = data["kdf"]
        assert isinstance(kdf, dict)
        key = self._derive(_unb64(kdf["salt"]))
        check = data["check"]
        assert isinstance(check, dict)
        try:
            AESGCM(key).decrypt(_unb64(check["nonce"]), _unb64(check["ct"]), _CHECK_AAD)
        except InvalidTag:
            raise KeystoreError(f"wrong passphrase for {self.path} ({PASSPHRASE_ENV})") from None
        self._key = key
        return key

    def _new(self) -> dict[str, object]:
        salt = os.urandom(16)
        key = self._derive(salt)
        nonce = os.urandom(12)
        self._key = key
        return {
            "version": 1,
            "kdf": {"name": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R,
                    "p": SCRYPT_P},
            "check": {"nonce": _b64(nonce),
                      "ct": _b64(AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD))},
            "records": {},
        }

    def put(self, account_id: str, secrets: dict[str, str]) -> str:
        """Store an account's secrets; returns the key reference kept in the database."""
        data = self._load() or self._new()
        key = self._key_for(data)
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, dumps(secrets).encode(), account_id.encode())
        records = data["records"]
        assert isinstance(records, dict)
        records[account_id] = {"nonce": _b64(nonce), "ct": _b64(ct)}
        self._write(data)
        return f"keystore:{account_id}"

    def get(self, account_id: str) -> dict[str, str]:
        data = self._load()
        if not data:
            raise KeystoreError(f"{self.path}: no keystore (onboard the account again)")
        key = self._key_for(data)
        records = data["records"]
        assert isinstance(records, dict)
        record = records.get(account_id)
        if record is None:
            raise KeystoreError(f"no keystore record for account {account_id}")
        try:
            plain = AESGCM(key).decrypt(_unb64(record["nonce"]), _unb64(record["ct"]),
                                        account_id.encode())
        except InvalidTag:
            raise KeystoreError(
                f"keystore record of {account_id} does not decrypt (moved or damaged)") from None
        result = json.loads(plain)
        assert isinstance(result, dict)
        return result

    def remove(self, account_id: str) -> None:
        data = self._load()
        records = data.get("records") if data else None
        if isinstance(records, dict) and account_id in records:
            self._key_for(data)
            del records[account_id]
            self._write(data)

    def secret_values(self) -> list[str]:
        """Every secret string stored (for scanning an export for leaks)."""
        data = self._load()
        if not data:
            return []
        records = data["records"]
        assert isinstance(records, dict)
        return ([v for account in sorted(records) for v in self.get(account).values()]
                + self.notify_urls()
                + [v["api_key"] for v in self.processors().values() if v.get("api_key")])

    # -- records of their own: notification URLs, payment processors ----------------------

    def _named(self, name: str, aad: bytes) -> object | None:
        """The decrypted value of the top-level record ``name`` (None when absent)."""
        data = self._load()
        record = data.get(name) if data else None
        if not isinstance(record, dict):
            return None
        key = self._key_for(data)
        try:
            plain = AESGCM(key).decrypt(_unb64(record["nonce"]), _unb64(record["ct"]), aad)
        except InvalidTag:
            raise KeystoreError(f"{self.path}: the {name} record does not decrypt (damaged)"
                                ) from None
        value: object = json.loads(plain)
        return value

    def _set_named(self, name: str, aad: bytes, value: object | None) -> None:
        """Store (or, with None or empty, remove) the top-level record ``name``."""
        data = self._load() or self._new()
        key = self._key_for(data)
        if value:
            nonce = os.urandom(12)
            ct = AESGCM(key).encrypt(nonce, dumps(value).encode(), aad)
            data[name] = {"nonce": _b64(nonce), "ct": _b64(ct)}
        else:
            data.pop(name, None)
        self._write(data)

    def has_notify_urls(self) -> bool:
        """Whether notification URLs are stored (known without the passphrase)."""
        data = self._load()
        return bool(data) and isinstance(data.get("notify"), dict)

    def notify_urls(self) -> list[str]:
        """The notification URLs, in the order they were added."""
        urls = self._named("notify", _NOTIFY_AAD) or []
        assert isinstance(urls, list)
        return [str(u) for u in urls]

    def set_notify_urls(self, urls: list[str]) -> None:
        """Store the notification URLs (an empty list removes the record)."""
        self._set_named("notify", _NOTIFY_AAD, urls)

    def has_processors(self) -> bool:
        """Whether a payment processor is set (known without the passphrase)."""
        data = self._load()
        return bool(data) and isinstance(data.get("processors"), dict)

    def processors(self) -> dict[str, dict[str, str]]:
        """Payment processors by kind (stripe, btcpay): their keys and addresses."""
        found = self._named("processors", _PROCESSORS_AAD) or {}
        assert isinstance(found, dict)
        return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in found.items()}

    def set_processor(self, kind: str, settings: dict[str, str] | None) -> None:
        """Store (or, with None, remove) one processor's settings."""
        found = self.processors()
        if settings is None:
            found.pop(kind, None)
        else:
            found[kind] = settings
        self._set_named("processors", _PROCESSORS_AAD, found)

    def _write(self, data: dict[str, object]) -> None:
        from vanta_box.reports.files import write_atomic

        write_atomic(self.path, json.dumps(data, sort_keys=True, indent=1), mode=0o600)
        os.chmod(self.path, 0o600)
