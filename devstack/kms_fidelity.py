"""moto's KMS made to answer as AWS KMS does where the service's "failures never destroy" rule depends on it.

moto (5.x) decrypts with a disabled or pending-deletion key, encrypts with them too, and answers a Decrypt whose
KeyId names another key than the ciphertext's with AccessDeniedException. AWS answers DisabledException,
KMSInvalidStateException and IncorrectKeyException. A wrong encryption context is InvalidCiphertextException
in both. Applied in-process (the moto server runs in a thread of the stack's or the tests' process), once.
"""

from __future__ import annotations

from typing import Any

_applied = False


def _error(kind: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(kind, message)
    error.code = 400
    return error


def _check_usable(key: Any) -> None:
    if key.key_state == "Disabled":
        raise _error("DisabledException", f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise _error("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def match_aws() -> None:
    """Patches moto's KmsBackend (idempotent)."""
    global _applied
    if _applied:
        return
    from moto.kms.models import KmsBackend

    original_decrypt = KmsBackend.decrypt
    original_encrypt = KmsBackend.encrypt

    def decrypt(
        self: Any, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None
    ) -> tuple[bytes, str]:
        plaintext, arn = original_decrypt(self, ciphertext_blob, encryption_context)
        key = next(key for key in self.keys.values() if key.arn == arn)
        if key_id is not None and self.any_id_to_key_id(key_id) != key.id:
            raise _error("IncorrectKeyException", "The key ID in the request does not identify the ciphertext's key.")
        _check_usable(key)
        return plaintext, arn

    def encrypt(self: Any, key_id: str, plaintext: bytes, encryption_context: dict[str, str]) -> tuple[bytes, str]:
        _check_usable(self.keys[self.any_id_to_key_id(key_id)])
        return original_encrypt(self, key_id, plaintext, encryption_context)

    KmsBackend.decrypt = decrypt  # type: ignore[method-assign]
    KmsBackend.encrypt = encrypt  # type: ignore[method-assign]
    _applied = True
