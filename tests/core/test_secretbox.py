"""Signing secrets sealed at rest: AES-256-GCM under keys from the environment."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from app.core.secretbox import PREFIX, SecretBox, SecretUnreadable, new_key, parse_keys
from app.core.settings import Environment, Settings
from app.main import create_app


def test_a_sealed_secret_opens_and_does_not_show() -> None:
    box = SecretBox(parse_keys(new_key()))
    sealed = box.seal("whsec-lab-2026")
    assert sealed.startswith(PREFIX)
    assert "whsec" not in sealed
    assert box.open(sealed) == "whsec-lab-2026"
    assert box.seal("whsec-lab-2026") != sealed  # a fresh nonce every time


def test_keys_change_without_losing_a_secret() -> None:
    old, new = new_key(), new_key()
    sealed_old = SecretBox(parse_keys(old)).seal("s1")
    both = SecretBox(parse_keys(f"{new},{old}"))
    assert both.open(sealed_old) == "s1"  # every listed key opens
    assert both.needs_sealing(sealed_old)  # but the first key seals
    resealed = both.seal(both.open(sealed_old))
    assert not both.needs_sealing(resealed)
    assert SecretBox(parse_keys(new)).open(resealed) == "s1"
    with pytest.raises(SecretUnreadable, match="does not hold"):
        SecretBox(parse_keys(new)).open(sealed_old)


def test_an_altered_seal_does_not_open() -> None:
    box = SecretBox(parse_keys(new_key()))
    head, _, blob = box.seal("s1").rpartition(":")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(SecretUnreadable, match="altered"):
        box.open(f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")


def test_without_keys_values_are_kept_as_given_and_read_as_given() -> None:
    box = SecretBox()
    assert not box.seals
    assert box.seal("s1") == "s1"
    assert box.open("s1") == "s1"
    assert not box.needs_sealing("s1")
    # A value kept as given is still read once keys are set (keys come to a running clinic).
    assert SecretBox(parse_keys(new_key())).open("s1") == "s1"


def test_bad_keys_stop_start_up_and_production_needs_one() -> None:
    refused = r"secrets_keys\n.*(not base64url|AES-256 needs 32)"
    for bad in ("short", "a" * 43 + "!", base64.urlsafe_b64encode(b"x" * 16).decode()):
        with pytest.raises(ValidationError, match=refused):
            Settings(secrets_keys=bad)
    production = Settings(
        environment=Environment.PRODUCTION, database_url="sqlite+aiosqlite:///:memory:"
    )
    with pytest.raises(RuntimeError, match="SECRETS_KEYS is required in production"):
        create_app(production)
    assert "secrets_keys" not in repr(Settings(secrets_keys=new_key()))
