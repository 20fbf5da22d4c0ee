"""Where a run computes and in which precision.

Training may run its forward pass under bf16 autocast; prediction always runs in float32, so a saved run
scores the same wherever it is evaluated. ``auto`` picks bf16 only where the hardware executes it natively
(CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX): on this project's 2-core Zen 4 CPU it trains MiniLM
1.5x faster (``make bench``); elsewhere bf16 would be emulated and slower than float32.

Training under bf16 on the CPU runs attention eagerly (:func:`training_attention`): PyTorch's CPU flash-attention
kernel, which ``sdpa`` picks when no dropout is active (every DP run), is slow in its bf16 backward pass. It took 43%
of a DP-LoRA step in a profile (MiniLM, adapt_layers 1, 2 threads); eager attention trains that step 1.6-1.7x faster
(186 -> 295-325 reports/s), the same in fp32. Passes without gradients (the frozen prefix, prediction) keep
``sdpa``, which is about 20% faster there.
"""

from __future__ import annotations

from contextlib import contextmanager

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


def training_attention(precision: str, device: torch.device) -> str | None:
    """The attention implementation of a training step: ``eager`` under bf16 on the CPU, else None (the model's own)."""
    return "eager" if device.type == "cpu" and precision == "bf16" else None


def encoders(model: torch.nn.Module) -> list:
    """The transformer encoders inside ``model``, wrapped by peft or Opacus or not."""
    from transformers import PreTrainedModel

    return [m for m in model.modules() if isinstance(m, PreTrainedModel)]


@contextmanager
def attention(model: torch.nn.Module, implementation: str | None):
    """Run the transformer encoders inside ``model`` with the attention ``implementation`` in this block, and
    restore each one's own afterwards; None changes nothing."""
    found = encoders(model) if implementation else []
    own = [encoder.config._attn_implementation for encoder in found]
    try:
        for encoder in found:
            encoder.set_attn_implementation(implementation)
        yield
    finally:
        for encoder, name in zip(found, own):
            encoder.set_attn_implementation(name)
