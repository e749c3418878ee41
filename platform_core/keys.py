"""The keys the platform starts with: Django's SECRET_KEY (refused when weak in production) and
the Fernet keys that encrypt tenant credentials (contract §8)."""

from pathlib import Path

from cryptography.fernet import Fernet
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

# URL-safe characters: no `$` for a shell, an .env file or compose to interpolate.
GENERATE_SECRET_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def refuse_weak_secret_key(secret_key: str) -> None:
    """Refuse a SECRET_KEY that Django's deployment check calls weak (security.W009)."""
    if (
        len(secret_key) < SECRET_KEY_MIN_LENGTH
        or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or secret_key.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak for production (DEBUG off): it needs at least "
            f"{SECRET_KEY_MIN_LENGTH} characters, at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} "
            f"of them different, and not the prefix {SECRET_KEY_INSECURE_PREFIX!r}. "
            f"Generate one with `{GENERATE_SECRET_KEY}`."
        )


def new_credentials_key() -> str:
    """A new random key for CREDENTIALS_KEYS: a Fernet key (32 random bytes, url-safe base64)."""
    return Fernet.generate_key().decode()


def load_credentials_keys(raw: str, *, debug: bool, var_dir: Path) -> list[str]:
    """Comma-separated Fernet keys; the first encrypts, all decrypt.

    Unset in DEBUG: a key is generated once into ``var/credentials.key`` so a bare machine runs.
    Unset otherwise: refuse to start.
    """
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        if not debug:
            raise ImproperlyConfigured(
                "CREDENTIALS_KEYS must be set when DEBUG is off "
                "(comma-separated Fernet keys; generate one with "
                "`python manage.py generate_credentials_key` in a development checkout, or "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)."
            )
        key_file = var_dir / "credentials.key"
        if not key_file.exists():
            var_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(new_credentials_key() + "\n")
            key_file.chmod(0o600)
        keys = [key_file.read_text().strip()]
    for key in keys:
        try:
            Fernet(key)
        except ValueError as exc:
            raise ImproperlyConfigured(
                "CREDENTIALS_KEYS holds a value that is not a Fernet key."
            ) from exc
    return keys
