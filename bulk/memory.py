"""A worker's memory bound: big buffers go back to the system when they are freed.

A bulk job handles buffers of a few MB (gunzipped export blocks, a page's part, its ciphertext)
in three threads. glibc's malloc serves a buffer that large with its own ``mmap`` at first, but
after the first one is freed it raises that threshold to the buffer's size (up to 32 MB) and
serves later ones from its heaps, one per thread, which keep freed memory: the worker's peak RSS
then grows with the export (measured with ``bench.bulk_throughput``: 134 MB at 100,000 events,
176 MB at 1,000,000). A fixed threshold keeps it flat (118 and 139 MB) at no measurable cost.

Set in each worker before it forks its pool (``worker_init``), so every pool process has it;
only on glibc, and not when ``MALLOC_MMAP_THRESHOLD_`` is in the environment (glibc reads that
itself: the operator's choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

from celery.signals import worker_init

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 256 * 1024


def fix_mmap_threshold() -> bool:
    """Whether the threshold was set (glibc only)."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


@worker_init.connect
def bound_worker_memory(sender, **kwargs):
    if not fix_mmap_threshold():
        logger.debug("malloc's mmap threshold left as it is")
