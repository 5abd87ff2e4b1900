"""The deployment's secret: given, or kept in a private key file made once."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from loyalty.adapters.secrets import KEY_BYTES, secret_key
from loyalty.settings import Settings


def test_without_a_key_a_private_key_file_is_made_once_and_reused(tmp_path: Path) -> None:
    settings = Settings(secret_key_file=str(tmp_path / "var" / "secret.key"))

    first, again = secret_key(settings), secret_key(settings)

    assert first == again and len(first) == KEY_BYTES
    assert stat.S_IMODE((tmp_path / "var" / "secret.key").stat().st_mode) == 0o600


def test_a_given_key_is_used_and_a_short_one_refused(tmp_path: Path) -> None:
    key = bytes(range(32))

    given = secret_key(Settings(secret_key=base64.b64encode(key).decode()))

    assert given == key
    with pytest.raises(ValueError, match="at least 32 bytes"):
        secret_key(Settings(secret_key=base64.b64encode(b"short").decode()))
