"""The deployment's secret key (HMAC of client addresses, encryption of TOTP secrets,
signatures of the event log's checkpoints).

``LOYALTY_SECRET_KEY`` (32 bytes, base64) when set; otherwise a key file
(``LOYALTY_SECRET_KEY_FILE``, default ``var/secret.key``), created with mode 0600 on first
use so that every server process and restart of one host shares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from loyalty.settings import Settings

KEY_BYTES = 32


def secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        key = base64.b64decode(settings.secret_key)
        if len(key) < KEY_BYTES:
            raise ValueError(f"LOYALTY_SECRET_KEY must hold at least {KEY_BYTES} bytes (base64)")
        return key
    path = Path(settings.secret_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
    return path.read_bytes()


def checkpoint_key(key: bytes) -> Ed25519PrivateKey:
    """The Ed25519 key that signs the event log's checkpoints, derived from the secret."""
    return Ed25519PrivateKey.from_private_bytes(
        hmac.new(key, b"loyalty chain checkpoints", hashlib.sha256).digest()
    )


class SecretBox:
    """AES-256-GCM under a key derived from the deployment's secret for one ``purpose``;
    the associated data (e.g. the owner's id) binds a ciphertext to its owner."""

    NONCE_BYTES = 12

    def __init__(self, key: bytes, purpose: str) -> None:
        self._aead = AESGCM(hmac.new(key, purpose.encode(), hashlib.sha256).digest())

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        nonce, ciphertext = sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES :]
        return self._aead.decrypt(nonce, ciphertext, associated)
