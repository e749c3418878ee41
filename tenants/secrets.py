"""Tenant secrets: random, shown once, stored only as a hash (contract §1).

The secrets carry 256 bits of entropy, so a single SHA-256 is enough to make a stolen table
useless and keeps the lookup on every API call a single indexed equality match; slow password
hashes exist for low-entropy human passwords, which these are not.
"""

import hashlib
import hmac
import secrets as _secrets

SECRET_BYTES = 32


def new_secret() -> str:
    return _secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
