"""Keep a long-running command's resident set at what it holds, not at its highest peak."""

from __future__ import annotations

import ctypes
import sys

LARGE_BUFFER = 128 * 1024
"""Bytes from which glibc maps an allocation on its own, and unmaps it when it is freed."""
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def return_large_buffers_when_freed() -> bool:
    """Make glibc hand every freed buffer of `LARGE_BUFFER` bytes or more back to the system.

    A busy feed is read in large pieces (socket reads and their joins of up to 256 KiB). By
    default glibc raises its mapping threshold to the size of the first such buffer freed, so
    later ones come from the heap, whose freed space it keeps: one burst of the feed then
    leaves the process a few MiB larger for good, in every relay that saw the burst. With the
    threshold fixed, each large buffer is mapped and unmapped on its own, and the resident set
    follows what the process holds. True if set; False where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The symbols the process already has, libc's among them: no search for the library
        # (`ctypes.util.find_library` runs `ldconfig -p`), nothing new loaded.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER))
