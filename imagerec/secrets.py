"""Secrets imagerec stores (Label Studio tokens): encrypted with Fernet (AES-128-CBC and HMAC-SHA256).

The key is ``IMAGEREC_SECRET_KEY`` (a Fernet key: 32 url-safe base64 bytes) or, when that is unset, one generated
at first use into ``<data dir>/secret.key``, readable by this user only. Losing the key loses the stored tokens
(register them again), nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from imagerec.config import Settings
from imagerec.errors import ImagerecError

KEY_FILE = "secret.key"


class SecretUnreadable(ImagerecError):
    """A stored secret was encrypted with another key (``IMAGEREC_SECRET_KEY`` or ``secret.key`` changed)."""

    status_code = 500


def encrypt(settings: Settings, plaintext: str) -> str:
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, stored: str) -> str:
    try:
        return _fernet(settings).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with this server's key "
                               "(IMAGEREC_SECRET_KEY or secret.key changed): register it again") from None


def _fernet(settings: Settings) -> Fernet:
    if settings.secret_key is not None:
        return Fernet(settings.secret_key.get_secret_value().encode())
    path = settings.data_dir / KEY_FILE
    if not path.is_file():
        try:
            write_exclusive(path, Fernet.generate_key().decode())
        except FileExistsError:  # another process made it first
            pass
    return Fernet(path.read_text().strip().encode())


def write_exclusive(path: Path, text: str) -> None:
    """Create ``path`` (never overwrite it) readable by this user only, holding ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
