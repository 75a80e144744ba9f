"""The encrypted keystore: broker secrets and notification URLs, never inside vanta.db.

One JSON file ``<home>/keystore`` (mode 0600). The key is derived with scrypt from the
``VANTA_PASSPHRASE`` environment variable and a random salt kept in the file; each record is
AES-256-GCM with a fresh 96-bit nonce and the account id as associated data, so a record
moved to another account fails to decrypt. A check record tells a wrong passphrase from a
damaged record. The notification URLs (apprise URLs hold tokens) are one record of their
own, ``notify``, outside the accounts' records and bound to its own associated data.
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
                + self.notify_urls())

    # -- notification URLs ---------------------------------------------------------------

    def has_notify_urls(self) -> bool:
        """Whether notification URLs are stored (known without the passphrase)."""
        data = self._load()
        return bool(data) and isinstance(data.get("notify"), dict)

    def notify_urls(self) -> list[str]:
        """The notification URLs, in the order they were added."""
        data = self._load()
        record = data.get("notify") if data else None
        if not isinstance(record, dict):
            return []
        key = self._key_for(data)
        try:
            plain = AESGCM(key).decrypt(_unb64(record["nonce"]), _unb64(record["ct"]),
                                        _NOTIFY_AAD)
        except InvalidTag:
            raise KeystoreError(
                f"{self.path}: the notification URLs do not decrypt (damaged)") from None
        urls = json.loads(plain)
        assert isinstance(urls, list)
        return [str(u) for u in urls]

    def set_notify_urls(self, urls: list[str]) -> None:
        """Store the notification URLs (an empty list removes the record)."""
        data = self._load() or self._new()
        key = self._key_for(data)
        if urls:
            nonce = os.urandom(12)
            ct = AESGCM(key).encrypt(nonce, dumps(urls).encode(), _NOTIFY_AAD)
            data["notify"] = {"nonce": _b64(nonce), "ct": _b64(ct)}
        else:
            data.pop("notify", None)
        self._write(data)

    def _write(self, data: dict[str, object]) -> None:
        from vanta_box.reports.files import write_atomic

        write_atomic(self.path, json.dumps(data, sort_keys=True, indent=1), mode=0o600)
        os.chmod(self.path, 0o600)
