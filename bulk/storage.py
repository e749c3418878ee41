"""Where job results live: parts written through Django's storage API.

``STORAGES["bulk"]`` when configured, else ``default_storage`` (a local directory under
MEDIA_ROOT by default). A part is one page of records as NDJSON, encrypted unless
``BULK_ENCRYPT_RESULTS`` is off (README, "Bulk downloads"). Part names carry the attempt that
wrote them, so a worker that lost its lease can never overwrite or delete a part that another
worker committed.

Encryption: AES-256-GCM with a key derived (HKDF-SHA256) from each of the platform's
CREDENTIALS_KEYS; the first encrypts, every listed key decrypts (a part names its key by a
fingerprint). A part is ``EPB2 | key id (8) | nonce (12) | ciphertext+tag``, and its associated
data is that header followed by the job id and the part's sequence number, which come from the
database, never from the file: a part copied over another job's (or another position of the
same job) fails authentication like a flipped byte does, and is refused (``PartRefused``,
logged), never served. AES-GCM rather than Fernet: a part is a few MB, and Fernet's base64 costs
ten times as much CPU. Associated data rather than a per-job key: it binds as strongly, keeps
one derived key per credential key (rotation re-encrypts a part under the new key with the same
binding), and the random 96-bit nonces stay far below their limit (2^32 parts per key).

Parts of the first format (``EPB1``, unbound, before results were bound to their job) are
refused rather than read: a legacy read path would let anyone who kept a copy of one replay it
into any job for as long as the path exists. Results are kept only a few days, so such a job is
simply submitted again. Parts stored unencrypted (``BULK_ENCRYPT_RESULTS`` off) carry no
binding: that setting is for storage trusted as much as the database.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
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
MAGIC = b"EPB2"  # the current format; the version is part of the authenticated header
LEGACY_MAGIC = b"EPB1"  # unbound parts: refused
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES


@dataclass(frozen=True)
class StoredPart:
    """A committed part as the database knows it: the binding comes from here."""

    job_id: int
    seq: int
    name: str
    encrypted: bool

    @classmethod
    def of(cls, part) -> StoredPart:
        """From a ``BulkPart`` row."""
        return cls(job_id=part.job_id, seq=part.seq, name=part.name, encrypted=part.encrypted)


class PartUnavailable(Exception):
    """A committed part that cannot be served (logged where it is raised)."""


class PartRefused(PartUnavailable):
    """A stored part that is not the one the platform wrote for this job and position
    (altered, swapped, truncated, missing, or of the unbound legacy format). Never served."""

    def __init__(self, part: StoredPart, reason: str):
        super().__init__(f"bulk job {part.job_id}: part {part.seq} refused: {reason}")
        self.part = part
        self.reason = reason


class LegacyPart(PartRefused):
    """A part of the unbound first format (``EPB1``), refused since parts are bound."""


class PartKeyMissing(PartUnavailable, CredentialsUnreadable):
    """A part encrypted under a key that is no longer in CREDENTIALS_KEYS."""


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


def _associated_data(header: bytes, job_id: int, seq: int) -> bytes:
    return header + struct.pack(">QI", job_id, seq)


def encrypt_part(data: bytes, *, job_id: int, seq: int) -> bytes:
    key_id, ciphers = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + key_id
    return (
        header + nonce + ciphers[key_id].encrypt(nonce, data, _associated_data(header, job_id, seq))
    )


def decrypt_part(payload: bytes, part: StoredPart) -> bytes:
    """The part's data, verified to be what the platform wrote for this job and position.
    Raises PartRefused (logged here) or PartKeyMissing."""
    _, ciphers = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    header = payload[:HEADER_BYTES]
    if header.startswith(LEGACY_MAGIC):
        raise _refused(part, "written in the unbound format of an earlier version", LegacyPart)
    if not header.startswith(MAGIC) or len(payload) < HEADER_BYTES + NONCE_BYTES:
        raise _refused(part, "not a result part of this platform")
    cipher = ciphers.get(header[len(MAGIC) :])
    if cipher is None:
        logger.error(
            "bulk job %s: result part %s (%s) is under a key no longer in CREDENTIALS_KEYS",
            part.job_id,
            part.seq,
            part.name,
        )
        raise PartKeyMissing("No configured CREDENTIALS_KEYS entry decrypts this part.")
    nonce = payload[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return cipher.decrypt(
            nonce,
            payload[HEADER_BYTES + NONCE_BYTES :],
            _associated_data(header, part.job_id, part.seq),
        )
    except InvalidTag:
        raise _refused(
            part, "it fails authentication (altered, or written for another job or position)"
        ) from None


def _refused(
    part: StoredPart,
    reason: str,
    kind: type[PartRefused] = PartRefused,
    level: int = logging.ERROR,
) -> PartRefused:
    # Ids and the storage name only: never a key or the part's content.
    logger.log(
        level,
        "bulk job %s: result part %s (%s) refused: %s",
        part.job_id,
        part.seq,
        part.name,
        reason,
    )
    return kind(part, reason)


def reencrypt_part(part: StoredPart) -> str | None:
    """Store the part again under the first of CREDENTIALS_KEYS, as a new file (storages never
    overwrite), with the same binding; returns the new file's name, or None when there is
    nothing to do: the part is under that key already, or it is refused (logged) and will never
    be served, so no key is needed for it. Raises PartKeyMissing when no configured key reads it."""
    payload = b"".join(stored_chunks(part.name))
    first_key_id, _ = _part_keys(tuple(platform_settings.CREDENTIALS_KEYS))
    if payload.startswith(MAGIC + first_key_id):
        return None
    try:
        data = decrypt_part(payload, part)
    except PartRefused:
        return None
    return write_part(part.name, data, encrypt=True, job_id=part.job_id, seq=part.seq)


def result_storage():
    if "bulk" in getattr(settings, "STORAGES", {}):
        return storages["bulk"]
    return default_storage


def job_directory(job_id: int) -> str:
    return f"bulk/{job_id}"


def part_name(job_id: int, seq: int, attempt: int) -> str:
    return f"{job_directory(job_id)}/part-{seq:06d}-a{attempt}.ndjson"


def write_part(name: str, data: bytes, *, encrypt: bool, job_id: int, seq: int) -> str:
    """Store part ``seq`` of job ``job_id``; returns the name the storage chose (it never
    overwrites)."""
    payload = encrypt_part(data, job_id=job_id, seq=seq) if encrypt else data
    # ContentFile: the local storage writes it in 64 KiB chunks. One write of the whole part
    # was measured to cost the kernel three times the CPU (0.5 s against 0.17 s for the parts
    # of 1,000,000 events): keep the chunks.
    return result_storage().save(name, ContentFile(payload))


def part_data(part: StoredPart) -> bytes:
    """A part's NDJSON, verified when it is encrypted (a part is one page: a few MB at most).
    Raises PartRefused (also when the file is gone) or PartKeyMissing."""
    try:
        payload = b"".join(stored_chunks(part.name))
    except FileNotFoundError:
        # Usually a race, not an attack: a key rotation moved it or the retention purge deleted
        # it after the download listed the parts.
        raise _refused(part, "the file is missing", level=logging.WARNING) from None
    return decrypt_part(payload, part) if part.encrypted else payload


def stored_chunks(name: str) -> Iterator[bytes]:
    """A stored file's bytes, READ_CHUNK at a time, never the whole file at once. Raises
    FileNotFoundError when it is missing.

    On a bucket the object's body is streamed: django-storages' S3File would download the whole
    object into a buffer before its first read()."""
    with result_storage().open(name, "rb") as handle:
        s3_object = getattr(handle, "obj", None)
        if s3_object is None:
            while chunk := handle.read(READ_CHUNK):
                yield chunk
            return
        client = s3_object.meta.client
        try:
            body = s3_object.get()["Body"]
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(name) from None  # deleted since open() looked it up
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()


def part_chunks(part: StoredPart) -> Iterator[bytes]:
    """A part's NDJSON bytes, in chunks. An unencrypted part streams from storage; an encrypted
    one (a page: a few MB) is verified whole first, so nothing of it is yielded unverified."""
    if not part.encrypted:
        try:
            yield from stored_chunks(part.name)
        except FileNotFoundError:
            raise _refused(part, "the file is missing", level=logging.WARNING) from None
        return
    data = part_data(part)
    for start in range(0, len(data), READ_CHUNK):
        yield data[start : start + READ_CHUNK]


def part_lines(part: StoredPart) -> Iterator[bytes]:
    """A part's records, one serialized JSON object each."""
    yield from (line for line in part_data(part).split(b"\n") if line)


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
