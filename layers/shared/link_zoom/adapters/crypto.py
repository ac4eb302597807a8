"""KMS envelope encryption of a user's Zoom tokens, bound to that user.

Each write gets a fresh data key from KMS (GenerateDataKey on the token key) with the encryption context
{"user_id", "purpose"}; the tokens are sealed with AES-256-GCM under that data key, with the user id as
associated data too. Only the encrypted data key, the nonce and the ciphertext are stored. A record
copied to another user id fails twice over: KMS refuses the other context, AES-GCM the other AAD.

Only KMS's InvalidCiphertextException (another user's encryption context) or a failed AES-GCM tag
(another user's AAD, or tampering) makes a record SealBroken, the one case where it may be dropped; every
other KMS error is TokenKeyUnavailable (503): a key or permission problem that heals once it is fixed.

Decrypted data keys are cached in memory for a few minutes, keyed by (user id, encrypted data key), so a
warm function reads a user's tokens without calling KMS on every request.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from link_zoom.adapters.aws import client
from link_zoom.config import get_settings
from link_zoom.domain.connection import SealBroken, Sealed
from link_zoom.errors import TokenKeyUnavailable
from link_zoom.observability import count, logger

PURPOSE = "zoom-tokens"
NONCE_BYTES = 12  # AES-GCM's standard 96-bit nonce, random per seal
DATA_KEY_CACHE_SECONDS = 300
DATA_KEY_CACHE_ENTRIES = 4096  # a keeper run touches thousands of users; each key is 32 bytes

_cache: OrderedDict[tuple[str, bytes], tuple[bytes, float]] = OrderedDict()
_cache_lock = threading.Lock()
_decrypt_locks = [threading.Lock() for _ in range(64)]


def _context(user_id: str) -> dict[str, str]:
    return {"user_id": user_id, "purpose": PURPOSE}


def _aad(user_id: str) -> bytes:
    return f"{PURPOSE}:{user_id}".encode()


def _remember(user_id: str, encrypted_key: bytes, key: bytes) -> None:
    with _cache_lock:
        _cache[(user_id, encrypted_key)] = (key, time.monotonic() + DATA_KEY_CACHE_SECONDS)
        _cache.move_to_end((user_id, encrypted_key))
        while len(_cache) > DATA_KEY_CACHE_ENTRIES:
            _cache.popitem(last=False)


def _recall(user_id: str, encrypted_key: bytes) -> bytes | None:
    with _cache_lock:
        entry = _cache.get((user_id, encrypted_key))
        if entry is None:
            return None
        key, expires = entry
        if expires <= time.monotonic():
            del _cache[(user_id, encrypted_key)]
            return None
        return key


def forget_cached_keys() -> None:
    """Empties the data key cache (a cold container; tests)."""
    with _cache_lock:
        _cache.clear()


def seal(user_id: str, plaintext: bytes) -> Sealed:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    with _kms_failures("GenerateDataKey"):
        answer = client("kms").generate_data_key(
            KeyId=get_settings().token_key_id, KeySpec="AES_256", EncryptionContext=_context(user_id)
        )
    key, encrypted_key = answer["Plaintext"], answer["CiphertextBlob"]
    _remember(user_id, encrypted_key, key)
    nonce = os.urandom(NONCE_BYTES)
    return Sealed(encrypted_key, nonce, AESGCM(key).encrypt(nonce, plaintext, _aad(user_id)))


def reseal(user_id: str, previous: Sealed, plaintext: bytes) -> Sealed | None:
    """Seals under `previous`'s data key if this process still holds it (KMS need not answer); None if not.
    A random 96-bit nonce per seal keeps AES-GCM safe for far more seals than one key ever sees."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = _recall(user_id, previous.encrypted_key)
    if key is None:
        return None
    nonce = os.urandom(NONCE_BYTES)
    return Sealed(previous.encrypted_key, nonce, AESGCM(key).encrypt(nonce, plaintext, _aad(user_id)))


def unseal(user_id: str, sealed: Sealed) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = _recall(user_id, sealed.encrypted_key) or _decrypt_once(user_id, sealed.encrypted_key)
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(user_id))
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("The stored tokens do not decrypt for this user.") from exc


def _decrypt_once(user_id: str, encrypted_key: bytes) -> bytes:
    """One KMS Decrypt per data key, also when a batch's worker threads all need the same user's key at once:
    the first asks KMS, the others wait for it and find the key cached (striped locks, so memory stays bounded)."""
    with _decrypt_locks[hash((user_id, encrypted_key)) % len(_decrypt_locks)]:
        key = _recall(user_id, encrypted_key)
        if key is None:
            key = _decrypt_data_key(user_id, encrypted_key)
            _remember(user_id, encrypted_key, key)
        return key


def _decrypt_data_key(user_id: str, encrypted_key: bytes) -> bytes:
    from botocore.exceptions import ClientError

    try:
        with _kms_failures("Decrypt"):
            answer = client("kms").decrypt(
                CiphertextBlob=encrypted_key, EncryptionContext=_context(user_id), KeyId=get_settings().token_key_id
            )
    except TokenKeyUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and _error_code(cause) in OTHER_OWNER_CODES:
            # KMS answers a wrong encryption context (the record was sealed for another user) or a blob that
            # is not a KMS ciphertext with InvalidCiphertextException: this record is provably not this user's.
            raise SealBroken("The stored data key does not decrypt for this user.") from cause
        raise
    return bytes(answer["Plaintext"])


# Only these prove the record is not this user's; every other KMS error (IncorrectKeyException after a
# changed TOKEN_KEY_ID, AccessDeniedException, DisabledException, KMSInvalidStateException for a key pending
# deletion, NotFoundException, throttling, no answer) is a configuration or platform fault that must never
# cost a user their connection.
OTHER_OWNER_CODES = frozenset({"InvalidCiphertextException"})


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextmanager
def _kms_failures(operation: str) -> Iterator[None]:
    """KMS failures as TokenKeyUnavailable (the original as its cause), counted and logged with KMS's code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        code = _error_code(exc) or type(exc).__name__
        if code not in OTHER_OWNER_CODES:
            count("TokenKeyFailures")
            logger.error("KMS refused the token key", extra={"kms_operation": operation, "kms_error": code})
        raise TokenKeyUnavailable() from exc
