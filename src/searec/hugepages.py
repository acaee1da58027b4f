"""Transparent huge pages for torch's large CPU tensors.

With ``THP_MEM_ALLOC_ENABLE=1`` torch's CPU allocator asks the kernel (``madvise``, Linux
only) for 2 MiB pages for every block of 2 MiB or more. Training and evaluation read the
node and item tables row by row in an order set by the graph, across hundreds of MiB,
where 4 KiB pages miss the TLB on almost every row, and every fresh block is faulted in
4 KiB at a time. At 5M interactions and 200,000 items a SEA training step took about
0.6x the time with huge pages, at the same peak memory (docs/performance.md).

torch reads the variable once, at its first large allocation, so it is set when
``searec`` is imported (before its own allocations; too late for a process that has
already allocated large tensors). Set ``THP_MEM_ALLOC_ENABLE=0`` before importing searec
to keep 4 KiB pages. Only the environment is touched here: no torch import.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "THP_MEM_ALLOC_ENABLE"
HUGE_PAGE = 2 * 1024 * 1024  # a huge page; torch advises blocks of at least this size


def request_huge_pages() -> None:
    """Ask torch for huge-page-backed large CPU blocks, unless the environment already
    says either way. Inherited by child processes (experiment workers, torchrun ranks)."""
    if sys.platform.startswith("linux"):
        os.environ.setdefault(ENV_VAR, "1")


def huge_pages_active() -> bool:
    """Whether this process's large CPU tensors get transparent huge pages: the kernel's
    own answer (``THPeligible`` in /proc/self/smaps) for the mapping of a fresh 4 MiB
    tensor. False where there is no such file (not Linux)."""
    import torch

    probe = torch.empty(HUGE_PAGE // 2)  # 4 MiB of float32
    address = probe.data_ptr()
    try:
        with open("/proc/self/smaps") as smaps:
            inside = False
            for line in smaps:
                head = line.split(maxsplit=1)[0]
                if "-" in head and not head.endswith(":"):  # a mapping's address range
                    start, _, end = head.partition("-")
                    inside = int(start, 16) <= address < int(end, 16)
                elif inside and head == "THPeligible:":
                    return line.split()[1] == "1"
    except OSError:
        pass
    return False
