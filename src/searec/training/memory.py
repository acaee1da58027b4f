"""CPU memory reuse between training steps, and whether a model fits at all.

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
import os
import random
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from searec.errors import ConfigError, SearecError

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


# ---------------------------------------------------------------- will the model fit?
def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``: the GPU's free memory, or the system's
    MemAvailable (Linux; else free physical pages); None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Footprint:
    """A model's tensors, measured on the meta device (no memory allocated)."""

    parameters: int  # bytes
    buffers: int  # bytes (features, graphs: held once, whether training or not)
    largest: tuple[str, tuple[int, ...]]  # the largest tensor's name and shape


class _NoRandomInit(TorchFunctionMode):
    """Skips normal-distribution initialisation of meta tensors: they have no values to
    fill, and torch's meta kernel for it imports torch._dynamo (about 1.5 s, which
    ``searec recommend`` and ``serve`` would pay at start-up for nothing)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in ("normal_", "trunc_normal_"):
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def footprint(build: Callable[[], nn.Module]) -> Footprint | None:
    """The size of what ``build`` would allocate, from building it on the meta device;
    None when the model cannot be built there (a plug-in's own code may not allow it).
    A :class:`~searec.errors.SearecError` from ``build`` (the user's input) propagates."""
    # the real build that follows must draw the same random numbers as without this one
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        # the real build that follows warns about the same things: say them once
        with torch.device("meta"), _NoRandomInit(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build()
    except SearecError:
        raise
    except Exception:  # an op without a meta kernel: no estimate, the real build decides
        return None
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    params = list(model.named_parameters())
    buffers = list(model.named_buffers())
    largest = max(params + buffers, key=lambda nt: nt[1].numel(), default=("", torch.empty(0)))
    return Footprint(
        parameters=sum(p.numel() * p.element_size() for _, p in params),
        buffers=sum(b.numel() * b.element_size() for _, b in buffers),
        largest=(largest[0], tuple(largest[1].shape)))


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_fits(found: Footprint, available: int, training: bool, keys: dict[str, int],
               what: str) -> None:
    """Refuse (ConfigError) a model whose tensors cannot fit in ``available`` bytes:
    parameters x4 when ``training`` (gradients and Adam's two moments), plus buffers.
    The message names the config key whose value sizes the largest tensor (from
    ``keys``, dotted key -> integer value), when one does."""
    need = found.parameters * (4 if training else 1) + found.buffers
    if need <= available:
        return
    name, shape = found.largest
    culprits = sorted((v, k) for k, v in keys.items() if v > 1 and v in shape)
    blame = (f"config key {culprits[-1][1]!r} ({culprits[-1][0]:,}): "
             if culprits else "")
    role = "to train (parameters, gradients and Adam's two moments)" if training \
        else "to load"
    raise ConfigError(
        f"{blame}{what} needs about {_gib(need)} {role}, its largest tensor {name!r} "
        f"{' x '.join(f'{d:,}' for d in shape)}; about {_gib(available)} is available. "
        "Use smaller sizes")
