"""Where job results live: parts written through Django's storage API.

``STORAGES["bulk"]`` when configured, else ``default_storage`` (a local directory under
MEDIA_ROOT by default). A part is one page of records as NDJSON, encrypted unless
``BULK_ENCRYPT_RESULTS`` is off (README, "Bulk downloads"). Part names carry the attempt that
wrote them, so a worker that lost its lease can never overwrite or delete a part that another
worker committed.

Encryption: AES-256-GCM with a key derived (HKDF-SHA256) from each of the platform's
CREDENTIALS_KEYS; the first encrypts, every listed key decrypts (a part names its key by a
fingerprint). A part is ``EPB1 | key id (8) | nonce (12) | ciphertext+tag``. AES-GCM rather
than Fernet: a part is a few MB, and Fernet's base64 costs ten times as much CPU.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages

from instances.crypto import CredentialsUnreadable
from platform_core.conf import platform_settings

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
MAGIC = b"EPB1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12


@lru_cache(maxsize=8)
def _part_keys(keys: tuple[str, ...]) -> tuple[bytes, dict[bytes, AESGCM]]:
    """(id of the encrypting key, {key id: cipher}) derived from the credential keys."""
    ciphers = {}
    first = b""
    for fernet_key in keys:
        material = base64.urlsafe_b64decode(fernet_key)
        key = HKDF(
            algorithm=SHA256(), length=32, salt=b"bulk-results", info=b"result-parts-v1"
        ).derive(material)
        key_id = hashlib.sha256(b"key-id:" + key).digest()[:KEY_ID_BYTES]
        ciphers[key_id] = AESGCM(key)
        first = first or key_id
    return first, ciphers


def encrypt_part(data: bytes) -> bytes:
    key_id, ciphers = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + key_id
    return header + nonce + ciphers[key_id].encrypt(nonce, data, header)


def decrypt_part(payload: bytes) -> bytes:
    _, ciphers = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    header = payload[: len(MAGIC) + KEY_ID_BYTES]
    cipher = ciphers.get(header[len(MAGIC) :]) if header.startswith(MAGIC) else None
    if cipher is None:
        raise CredentialsUnreadable("No configured CREDENTIALS_KEYS entry decrypts this part.")
    nonce = payload[len(header) : len(header) + NONCE_BYTES]
    return cipher.decrypt(nonce, payload[len(header) + NONCE_BYTES :], header)


def reencrypt_part(name: str) -> str | None:
    """Store the part again under the first of CREDENTIALS_KEYS, as a new file (storages never
    overwrite); returns the new file's name, or None when the part is under that key already.
    Raises CredentialsUnreadable when no configured key reads it."""
    with result_storage().open(name, "rb") as handle:
        payload = handle.read()
    first_key_id, _ = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    if payload.startswith(MAGIC + first_key_id):
        return None
    return write_part(name, decrypt_part(payload), encrypt=True)


def result_storage():
    if "bulk" in getattr(settings, "STORAGES", {}):
        return storages["bulk"]
    return default_storage


def job_directory(job_id: int) -> str:
    return f"bulk/{job_id}"


def part_name(job_id: int, seq: int, attempt: int) -> str:
    return f"{job_directory(job_id)}/part-{seq:06d}-a{attempt}.ndjson"


def write_part(name: str, data: bytes, *, encrypt: bool) -> str:
    """Store one part; returns the name the storage chose (it never overwrites)."""
    payload = encrypt_part(data) if encrypt else data
    return result_storage().save(name, ContentFile(payload))


def part_chunks(name: str, *, encrypted: bool) -> Iterator[bytes]:
    """A part's NDJSON bytes, in chunks (a part is one page: a few MB at most)."""
    storage = result_storage()
    with storage.open(name, "rb") as handle:
        if encrypted:
            data = decrypt_part(handle.read())
            for start in range(0, len(data), READ_CHUNK):
                yield data[start : start + READ_CHUNK]
            return
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def part_lines(name: str, *, encrypted: bool) -> Iterator[bytes]:
    """A part's records, one serialized JSON object each."""
    pending = b""
    for chunk in part_chunks(name, encrypted=encrypted):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line)
    if pending:
        yield pending


def job_files(job_id: int) -> list[str]:
    storage = result_storage()
    try:
        _, files = storage.listdir(job_directory(job_id))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [f"{job_directory(job_id)}/{f}" for f in files]


def delete_files(names: Iterable[str]) -> int:
    storage = result_storage()
    deleted = 0
    for name in names:
        try:
            storage.delete(name)
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("could not delete bulk result file %s", name, exc_info=True)
    return deleted


def delete_job_files(job_id: int) -> int:
    deleted = delete_files(job_files(job_id))
    storage = result_storage()
    # Local directories are left empty by delete(); remove them too where the storage has paths.
    try:
        path = storage.path(job_directory(job_id))
    except NotImplementedError:
        return deleted
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return deleted
