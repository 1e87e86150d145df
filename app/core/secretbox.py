"""Secrets the service must read back, sealed at rest: the lab's webhook signing secrets.

An HMAC is checked with the secret itself, so it cannot be kept as a hash the way passwords,
tokens and API keys are. It is sealed instead, with AES-256-GCM under a key that lives in the
environment (``SECRETS_KEYS``), not in the database: a copy of the database or of a backup
does not let anyone sign a lab result.

A sealed value reads ``enc:v1:<key id>:<base64url(nonce | ciphertext)>``; the key id is the
first eight hex digits of the key's SHA-256, so every value names the key that sealed it. The
first key listed seals; every key listed opens. To change keys: put the new one first, run
``python -m app.cli seal-secrets`` (everything is sealed again under it), then drop the old
one; with several server processes, first give every one of them the new key (second), then
put it first. Without keys (development only: production refuses to start) values are kept as
given; once keys are set, a value kept as given is refused until ``seal-secrets`` seals it, so
that nobody who can write to the database can slip in a secret of their own.

Each value is bound to its owner (the API client's id, in the AES-GCM associated data): a
sealed value copied onto another client's row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
# Bound into every seal: a value sealed for another purpose does not open as a signing secret.
PURPOSE = b"pregnancy-butler/api-client/signing-secret"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value that none of the configured keys opens (or that was altered)."""


def new_key() -> str:
    """A fresh key for SECRETS_KEYS: 32 random bytes, base64url."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_keys(value: str | None) -> list[bytes]:
    """SECRETS_KEYS: base64url keys of 32 bytes, separated by commas; the first seals."""
    keys: list[bytes] = []
    for n, part in enumerate(p.strip() for p in (value or "").split(",")):
        if not part:
            continue
        try:
            key = base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"key {n + 1} is not base64url") from exc
        if len(key) != 32:
            raise ValueError(f"key {n + 1} is {len(key)} bytes; AES-256 needs 32")
        if key_id(key) in {key_id(k) for k in keys}:
            raise ValueError(f"key {n + 1} is listed twice")
        keys.append(key)
    if value and value.strip() and not keys:
        raise ValueError("holds no key")
    return keys


class SecretBox:
    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self._current = key_id(keys[0]) if keys else None

    @classmethod
    def from_setting(cls, value: str | None) -> SecretBox:
        return cls(parse_keys(value))

    @property
    def seals(self) -> bool:
        return self._current is not None

    def seal(self, plain: str, *, owner: uuid.UUID) -> str:
        if self._current is None:
            return plain
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plain.encode(), _aad(owner))
        blob = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{PREFIX}{self._current}:{blob}"

    def open(self, stored: str, *, owner: uuid.UUID) -> str:
        if not stored.startswith(PREFIX):
            if self._current is not None:
                raise SecretUnreadable("kept unsealed although keys are set: run seal-secrets")
            return stored
        kid, _, blob = stored[len(PREFIX) :].partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretUnreadable(f"sealed with key {kid}, which SECRETS_KEYS does not hold")
        try:
            raw = base64.urlsafe_b64decode(blob)
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(owner)).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretUnreadable(
                f"sealed with key {kid} but does not open: altered, or not this client's"
            ) from exc

    def reseal(self, stored: str, *, owner: uuid.UUID) -> str:
        """Under the first key: a value kept as given, or sealed under another key."""
        if self._current is None or stored.startswith(f"{PREFIX}{self._current}:"):
            return stored
        plain = stored if not stored.startswith(PREFIX) else self.open(stored, owner=owner)
        return self.seal(plain, owner=owner)


def _aad(owner: uuid.UUID) -> bytes:
    return PURPOSE + b":" + str(owner).encode()
