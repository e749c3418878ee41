"""A worker's memory bound without paying for it in page faults.

A bulk job handles buffers of one to a few MB (gunzipped export blocks, a block's records with
their ids, a page's part and its ciphertext) in two threads, the job's and its committer's.
glibc's malloc serves a buffer that large with its own ``mmap`` at first; once one is freed it
raises that threshold to the buffer's size (up to 32 MB) and serves later ones from its heaps,
one per thread, which then keep up to twice that much freed memory each.

Two fixed settings replace that drift:

- ``M_MMAP_THRESHOLD`` of 8 MiB, above every block (a gunzip step is at most 4 MiB) and, for
  records of the usual few hundred bytes, every page (``BULK_EXPORT_PAGE_RECORDS`` ends it
  first): those come from the heaps and are reused, instead of being mapped and faulted in
  afresh each time (16 MiB, which also covers pages of large records, measured the same). A
  256 KiB threshold (this module's first setting) kept the peak RSS lowest but mapped some 15
  bytes for every byte of the export, and the page faults cost about 0.5 s per million events
  (``bench.bulk_throughput``, both settings in the same window).
- ``M_TRIM_THRESHOLD`` of 16 MiB: what a heap keeps free above that goes back to the system,
  so the peak stays bounded by what a job holds at once, not by the export's size.

Set in each worker before it forks its pool (``worker_init``), so every pool process has them;
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

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 8 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 16 * 1024 * 1024


def fix_mmap_threshold() -> bool:
    """Whether the thresholds were set (glibc only)."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


@worker_init.connect
def bound_worker_memory(sender, **kwargs):
    if not fix_mmap_threshold():
        logger.debug("malloc's mmap threshold left as it is")
