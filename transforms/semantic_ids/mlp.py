"""The trained networks of an RQ-VAE codebook, held as numpy arrays (no torch needed to encode)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mlp:
    """Dense layers with ReLU between them, evaluated in numpy float32 so that encoding never depends
    on torch, the device or its kernels.

    Attributes:
        weights: Per layer ``(out, in)`` float32.
        biases: Per layer ``(out,)`` float32.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out = out @ w.T
            out += b
            if i < last:
                np.maximum(out, 0.0, out=out)
        return out.astype(np.float32, copy=False)

    @property
    def out_dim(self) -> int:
        return int(self.weights[-1].shape[0])
