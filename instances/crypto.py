"""Encryption of stored credentials and tokens with MultiFernet (contract §3, §8).

``CREDENTIALS_KEYS`` lists Fernet keys: the first encrypts, every one decrypts, so a new key can
be put first, ``rotate_credentials_key`` run, and the old key removed afterwards.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from platform_core.conf import platform_settings


class CredentialsUnreadable(Exception):
    """Stored ciphertext no configured key can open (a key was removed too early)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(platform_settings.CREDENTIALS_KEYS))


def encrypt_text(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable(
            "No configured CREDENTIALS_KEYS entry decrypts this value."
        ) from exc


def encrypt_json(value) -> str:
    return encrypt_text(json.dumps(value, separators=(",", ":")))


def decrypt_json(token: str):
    """A fresh copy each call (configurations hold only scalars): callers may change it."""
    return dict(_decrypt_json_cached(token, tuple(platform_settings.CREDENTIALS_KEYS)))


@lru_cache(maxsize=1024)
def _decrypt_json_cached(token: str, keys: tuple[str, ...]):
    # Keyed by the ciphertext itself (and the keys in force): a changed configuration is a
    # new ciphertext, so this can never answer with stale credentials. Saves a Fernet
    # decryption on every element call.
    return json.loads(decrypt_text(token))


def reencrypt(token: str) -> str:
    """The same plaintext under the first key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable(
            "No configured CREDENTIALS_KEYS entry decrypts this value."
        ) from exc
