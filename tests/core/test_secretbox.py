"""Signing secrets sealed at rest: AES-256-GCM under keys from the environment."""

from __future__ import annotations

import base64
import secrets
import uuid

import pytest
from pydantic import ValidationError

from app.core.secretbox import PREFIX, SecretBox, SecretUnreadable, new_key, parse_keys
from app.core.settings import Environment, Settings
from app.main import create_app

LAB = uuid.uuid4()


def test_a_sealed_secret_opens_for_its_owner_only() -> None:
    box = SecretBox(parse_keys(new_key()))
    plain = secrets.token_urlsafe(32)
    sealed = box.seal(plain, owner=LAB)
    assert sealed.startswith(PREFIX)
    assert plain not in sealed
    assert box.open(sealed, owner=LAB) == plain
    assert box.seal(plain, owner=LAB) != sealed  # a fresh nonce every time
    # Copied onto another client's row, it does not open there.
    with pytest.raises(SecretUnreadable, match="not this client's"):
        box.open(sealed, owner=uuid.uuid4())


def test_keys_change_without_losing_a_secret() -> None:
    old, new = new_key(), new_key()
    sealed_old = SecretBox(parse_keys(old)).seal("s1", owner=LAB)
    both = SecretBox(parse_keys(f"{new},{old}"))
    assert both.open(sealed_old, owner=LAB) == "s1"  # every listed key opens
    resealed = both.reseal(sealed_old, owner=LAB)  # the first key seals
    assert resealed != sealed_old
    assert both.reseal(resealed, owner=LAB) == resealed  # once is enough
    assert SecretBox(parse_keys(new)).open(resealed, owner=LAB) == "s1"
    with pytest.raises(SecretUnreadable, match="does not hold"):
        SecretBox(parse_keys(new)).open(sealed_old, owner=LAB)


def test_an_altered_seal_does_not_open() -> None:
    box = SecretBox(parse_keys(new_key()))
    head, _, blob = box.seal("s1", owner=LAB).rpartition(":")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(SecretUnreadable, match="altered"):
        box.open(f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", owner=LAB)


def test_a_value_kept_as_given_is_read_only_while_there_are_no_keys() -> None:
    bare = SecretBox()
    assert not bare.seals
    assert bare.seal("s1", owner=LAB) == "s1"
    assert bare.open("s1", owner=LAB) == "s1"
    keyed = SecretBox(parse_keys(new_key()))
    # Once keys are set, a plain value (slipped into the database, or not yet sealed) is
    # refused until seal-secrets seals it.
    with pytest.raises(SecretUnreadable, match="run seal-secrets"):
        keyed.open("s1", owner=LAB)
    assert keyed.open(keyed.reseal("s1", owner=LAB), owner=LAB) == "s1"


def test_bad_keys_stop_start_up_without_showing_them() -> None:
    good = new_key()
    refused = r"secrets_keys\n.*(not base64url|AES-256 needs 32|listed twice|holds no key)"
    for bad in (
        "short",
        "a" * 43 + "!",
        base64.urlsafe_b64encode(b"x" * 16).decode(),
        f"{good},{good}",
        ",",
        " , ",
        f"{good},shortkeyAAAA",
    ):
        with pytest.raises(ValidationError, match=refused) as caught:
            Settings(secrets_keys=bad)
        assert good[:8] not in str(caught.value)
        assert "shortkey" not in str(caught.value)
    assert "secrets_keys" not in repr(Settings(secrets_keys=good))


def test_production_does_not_start_without_a_key() -> None:
    production = Settings(
        environment=Environment.PRODUCTION, database_url="sqlite+aiosqlite:///:memory:"
    )
    with pytest.raises(RuntimeError, match="SECRETS_KEYS is required in production"):
        create_app(production)
