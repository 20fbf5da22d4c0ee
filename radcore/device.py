"""Where a run computes and in which precision.

Training may run its forward pass under bf16 autocast; prediction always runs in float32, so a saved run
scores the same wherever it is evaluated. ``auto`` picks bf16 only where the hardware executes it natively
(CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX): on this project's 2-core Zen 4 CPU it trains MiniLM
1.5x faster (``make bench``); elsewhere bf16 would be emulated and slower than float32.
"""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no GPU")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix products in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``bf16`` or ``fp32`` for training on ``device``; ``auto`` follows :func:`native_bf16`."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(device: torch.device, precision: str):
    """The training forward pass's autocast context (a no-op for fp32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
