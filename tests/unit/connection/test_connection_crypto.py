"""The KMS envelope: sealed per user, bound to the user twice (KMS context and AAD), data keys cached briefly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from link_zoom.adapters import crypto

ALICE = "6cf7068e-7348-4e94-ad7b-9cf9002b11f5"
MALLORY = "b6401320-29fc-4623-b990-0c01ae6bc694"
SECRET = b'{"access_token": "a", "refresh_token": "r"}'


@pytest.fixture
def kms_calls(aws: dict[str, str]) -> Iterator[list[str]]:
    from link_zoom.adapters.aws import client

    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client("kms").meta.events.register("before-call.kms.*", count)
    yield calls
    client("kms").meta.events.unregister("before-call.kms.*", count)


def test_a_sealed_value_opens_for_its_user(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)

    assert SECRET not in sealed.ciphertext and len(sealed.nonce) == 12
    assert crypto.unseal(ALICE, sealed) == SECRET


def test_another_user_cannot_open_it_even_with_the_owners_key_cached(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)

    with pytest.raises(crypto.SealBroken):
        crypto.unseal(MALLORY, sealed)
    assert kms_calls == ["GenerateDataKey", "Decrypt"]  # KMS was asked for mallory, and refused


def test_kms_alone_refuses_another_users_context(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()

    with pytest.raises(crypto.SealBroken):
        crypto._decrypt_data_key(MALLORY, sealed.encrypted_key)


def test_a_tampered_ciphertext_does_not_open(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]

    with pytest.raises(crypto.SealBroken):
        crypto.unseal(ALICE, replace(sealed, ciphertext=flipped))


def test_each_seal_gets_its_own_data_key_and_nonce(kms_calls: list[str]) -> None:
    first, second = crypto.seal(ALICE, SECRET), crypto.seal(ALICE, SECRET)

    assert first.encrypted_key != second.encrypted_key and first.nonce != second.nonce


def test_a_warm_process_opens_without_kms(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()

    for _ in range(10):
        crypto.unseal(ALICE, sealed)

    assert kms_calls == ["GenerateDataKey", "Decrypt"]


def test_cached_keys_expire(kms_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = crypto.seal(ALICE, SECRET)
    clock = [1000.0]
    monkeypatch.setattr(crypto.time, "monotonic", lambda: clock[0])
    crypto.forget_cached_keys()
    crypto.unseal(ALICE, sealed)

    clock[0] += crypto.DATA_KEY_CACHE_SECONDS + 1
    crypto.unseal(ALICE, sealed)

    assert kms_calls == ["GenerateDataKey", "Decrypt", "Decrypt"]


def test_the_cache_is_bounded(kms_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "DATA_KEY_CACHE_ENTRIES", 3)

    for _ in range(5):
        crypto.seal(ALICE, SECRET)

    assert len(crypto._cache) == 3


# --- configuration faults are not a foreign record: they never cost a connection


def _kms() -> Any:
    from link_zoom.adapters.aws import client

    return client("kms")


def test_a_disabled_key_is_unavailable_not_broken_and_opens_again_once_enabled(aws: dict[str, str]) -> None:
    from link_zoom.errors import TokenKeyUnavailable

    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()
    _kms().disable_key(KeyId=aws["TOKEN_KEY_ID"])

    with pytest.raises(TokenKeyUnavailable) as raised:
        crypto.unseal(ALICE, sealed)
    assert raised.value.status == 503 and raised.value.code == "service_unavailable"
    with pytest.raises(TokenKeyUnavailable):
        crypto.seal(ALICE, SECRET)
    _kms().enable_key(KeyId=aws["TOKEN_KEY_ID"])
    assert crypto.unseal(ALICE, sealed) == SECRET


def test_a_key_pending_deletion_is_unavailable(aws: dict[str, str]) -> None:
    from link_zoom.errors import TokenKeyUnavailable

    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()
    _kms().schedule_key_deletion(KeyId=aws["TOKEN_KEY_ID"], PendingWindowInDays=7)

    with pytest.raises(TokenKeyUnavailable):
        crypto.unseal(ALICE, sealed)
    _kms().cancel_key_deletion(KeyId=aws["TOKEN_KEY_ID"])
    _kms().enable_key(KeyId=aws["TOKEN_KEY_ID"])
    assert crypto.unseal(ALICE, sealed) == SECRET


def test_a_changed_token_key_id_is_unavailable_and_opens_again_once_restored(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from link_zoom.config import get_settings
    from link_zoom.errors import TokenKeyUnavailable

    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()
    monkeypatch.setenv("TOKEN_KEY_ID", _kms().create_key()["KeyMetadata"]["KeyId"])
    get_settings.cache_clear()

    with pytest.raises(TokenKeyUnavailable) as raised:
        crypto.unseal(ALICE, sealed)
    assert raised.value.__cause__ is not None and "IncorrectKeyException" in str(raised.value.__cause__)
    monkeypatch.setenv("TOKEN_KEY_ID", aws["TOKEN_KEY_ID"])
    get_settings.cache_clear()
    assert crypto.unseal(ALICE, sealed) == SECRET


def test_access_denied_is_unavailable(aws: dict[str, str]) -> None:
    from botocore.exceptions import ClientError

    from link_zoom.errors import TokenKeyUnavailable

    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Decrypt")

    _kms().meta.events.register("before-call.kms.Decrypt", deny)
    try:
        with pytest.raises(TokenKeyUnavailable):
            crypto.unseal(ALICE, sealed)
    finally:
        _kms().meta.events.unregister("before-call.kms.Decrypt", deny)


def test_reseal_uses_the_data_key_held_in_memory_without_kms(kms_calls: list[str]) -> None:
    sealed = crypto.seal(ALICE, SECRET)
    again = crypto.reseal(ALICE, sealed, b"rotated")

    assert again is not None and again.encrypted_key == sealed.encrypted_key and again.nonce != sealed.nonce
    assert crypto.unseal(ALICE, again) == b"rotated" and kms_calls == ["GenerateDataKey"]
    crypto.forget_cached_keys()
    assert crypto.reseal(ALICE, sealed, b"rotated") is None


def test_threads_that_open_one_users_tokens_at_once_ask_kms_once(kms_calls: list[str]) -> None:
    import threading

    sealed = crypto.seal(ALICE, SECRET)
    crypto.forget_cached_keys()  # a fresh container: a stream batch's 16 workers all need alice's key
    start = threading.Barrier(16)
    opened: list[bytes] = []

    def open_it() -> None:
        start.wait()
        opened.append(crypto.unseal(ALICE, sealed))

    threads = [threading.Thread(target=open_it) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert opened == [SECRET] * 16
    assert kms_calls == ["GenerateDataKey", "Decrypt"]
