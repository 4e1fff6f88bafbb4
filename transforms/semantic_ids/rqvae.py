"""RQ-VAE (TIGER): an MLP encoder, residual vector quantization in its latent space, an MLP decoder.

Trained with torch, on CUDA when present. The trained networks are handed back as numpy
:class:`~transforms.semantic_ids.mlp.Mlp` so that encoding (and therefore every ID) never
depends on the device it was trained on.

::

    x (n, dim) -> encoder -> z (n, latent) -> residual VQ: q_l = C_l[argmin ||r_l - C_l||], r_{l+1} = r_l - q_l
    z_q = z + stopgrad(sum_l q_l - z)          (straight-through)
    loss = ||decoder(z_q) - x||^2 + sum_l ||stopgrad(r_l) - q_l||^2 + beta ||r_l - stopgrad(q_l)||^2

Codebooks start from residual k-means on the initial latents; a code unused during an epoch is
reset to a latent residual drawn from the data (against codebook collapse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from transforms.semantic_ids.config import SemanticIdConfig
from transforms.semantic_ids.kmeans import fit_level
from transforms.semantic_ids.mlp import Mlp

if TYPE_CHECKING:  # torch is imported when a model trains, not when the codebook module loads
    import torch

INIT_KMEANS_ITERATIONS = 10


@dataclass(frozen=True)
class TrainedRqVae:
    encoder: Mlp
    decoder: Mlp
    centroids: tuple[np.ndarray, ...]
    final_loss: float
    device: str


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def train_rqvae(sample: np.ndarray, config: SemanticIdConfig) -> TrainedRqVae:
    """Train an RQ-VAE on ``sample`` (float32 rows) with ``config.seed``."""
    import torch

    rq = config.rqvae
    device = torch.device(resolve_device(rq.device))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        return _train(sample, config, device)


def _mlp(widths: list[int]) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _to_mlp(module: torch.nn.Sequential) -> Mlp:
    import torch

    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    return Mlp(
        weights=tuple(m.weight.detach().cpu().numpy().astype(np.float32) for m in linears),
        biases=tuple(m.bias.detach().cpu().numpy().astype(np.float32) for m in linears),
    )


def _train(sample: np.ndarray, config: SemanticIdConfig, device: torch.device) -> TrainedRqVae:
    import torch

    rq = config.rqvae
    n, dim = sample.shape
    k = config.codes_per_level
    widths = [dim, *rq.hidden, rq.latent_dim]
    encoder = _mlp(widths).to(device)
    decoder = _mlp(widths[::-1]).to(device)
    x_all = torch.from_numpy(np.ascontiguousarray(sample, np.float32)).to(device)
    rng = np.random.default_rng(config.seed)

    # Codebooks start from residual k-means on the untrained encoder's latents.
    with torch.no_grad():
        residual = encoder(x_all).cpu().numpy()
    init = []
    for _ in range(config.levels):
        fit = fit_level(residual, k, rng, max_iter=INIT_KMEANS_ITERATIONS, tol=config.tol, balanced=False)
        residual = residual - fit.centroids[fit.codes]
        init.append(fit.centroids)
    codebooks = torch.nn.Parameter(torch.from_numpy(np.stack(init)).to(device))

    params = [*encoder.parameters(), *decoder.parameters(), codebooks]
    optimiser = torch.optim.Adam(params, lr=rq.learning_rate)
    batch = min(rq.batch_size, n)
    loss_value = float("nan")
    for _epoch in range(rq.epochs):
        used = torch.zeros(config.levels, k, dtype=torch.bool, device=device)
        order = torch.from_numpy(rng.permutation(n)).to(device)
        for start in range(0, n, batch):
            x = x_all[order[start : start + batch]]
            z = encoder(x)
            residual_t = z
            quantized = torch.zeros_like(z)
            vq_loss = z.new_zeros(())
            for level in range(config.levels):
                book = codebooks[level]
                dist = (residual_t.detach() @ book.T) * -2.0 + (book * book).sum(1)
                idx = dist.argmin(dim=1)
                used[level, idx] = True
                # One-hot product instead of indexing: its backward is deterministic on CUDA too.
                q = torch.nn.functional.one_hot(idx, k).to(book.dtype) @ book
                vq_loss = vq_loss + ((residual_t.detach() - q) ** 2).mean() + rq.commitment * ((residual_t - q.detach()) ** 2).mean()
                quantized = quantized + q
                residual_t = residual_t - q.detach()
            z_q = z + (quantized - z).detach()
            loss = ((decoder(z_q) - x) ** 2).mean() + vq_loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            loss_value = float(loss.detach())
        _reset_dead_codes(encoder, codebooks, x_all, used, rng)
    return TrainedRqVae(
        encoder=_to_mlp(encoder),
        decoder=_to_mlp(decoder),
        centroids=tuple(c.copy() for c in codebooks.detach().cpu().numpy().astype(np.float32)),
        final_loss=loss_value,
        device=str(device),
    )


def _reset_dead_codes(
    encoder: torch.nn.Module, codebooks: torch.Tensor, x_all: torch.Tensor, used: torch.Tensor, rng: np.random.Generator
) -> None:
    """Move codes no row used this epoch onto residuals of random rows, level by level."""
    import torch

    if bool(used.all()):
        return
    with torch.no_grad():
        rows = torch.from_numpy(rng.choice(x_all.shape[0], size=min(4096, x_all.shape[0]), replace=False)).to(x_all.device)
        residual = encoder(x_all[rows])
        for level in range(codebooks.shape[0]):
            dead = torch.nonzero(~used[level]).flatten()
            if len(dead):
                pick = torch.from_numpy(rng.choice(len(rows), size=len(dead), replace=len(dead) > len(rows))).to(x_all.device)
                codebooks[level, dead] = residual[pick]
            book = codebooks[level]
            idx = ((residual @ book.T) * -2.0 + (book * book).sum(1)).argmin(dim=1)
            residual = residual - book[idx]
