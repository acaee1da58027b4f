"""CPU memory reuse between training steps.

Every training step allocates the same large temporaries (embeddings of all users and
items, propagated layers, their gradients). glibc's malloc serves blocks above 32 MiB
with a fresh ``mmap`` and returns them to the OS on ``free``, so each step pays the
kernel to fault in and zero those pages again: about 40% of a CPU step at 200k items,
16-26% on TikTok (docs/performance.md). Keeping freed memory in the process removes
that cost, at the price of a higher peak resident size on large data (freed blocks are
kept and the heap fragments; 1.6-2.2x at 1M-5M interactions and 200k items). PyTorch's CPU
allocator has no cache of its own; CUDA memory is not affected.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse; False if this C library cannot.

    Process-wide and not undone: large blocks come from the heap instead of ``mmap``
    and the heap is not trimmed (up to 2 GiB of free space at its top is kept).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    # gnu_get_libc_version exists only in glibc; other C libraries ignore these settings
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
