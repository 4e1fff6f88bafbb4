"""Where a run trains: the one rule for ``run.device`` (``auto``, ``cpu``, ``cuda``) and what that device does fast."""

from __future__ import annotations

import torch


def uses_cuda(device_name: str) -> bool:
    """``cuda``, or ``auto`` on a machine with a CUDA device."""
    return device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())


def fast_bf16(device_name: str = "auto") -> bool:
    """Whether bfloat16 matrix products are fast where a run on ``device_name`` trains: a CUDA device that supports
    them, or a CPU with AVX512-BF16 / AMX (oneDNN's check). Elsewhere autocast to bfloat16 is slower than float32."""
    if uses_cuda(device_name) and torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
