"""HSTU (Zhai et al., ICML 2024, "Actions Speak Louder than Words") over jagged sequences.

One block, on the jagged values ``x [N, D]`` (N = sum of the batch's lengths; only the attention is
computed padded, ``[B, n, n]``, as the reference does without its fused kernels)::

    u, v, q, k = split(SiLU(LayerNorm(x) @ W_uvqk))                     pointwise, on [N, .]
    A[i, j]    = SiLU(q_i . k_j + rab_pos(j - i) + rab_time(bucket(t_next(i) - t_j))) / max_len,  j <= i
    y          = x + W_o(dropout(u * LayerNorm(A v)))

Attention weights are not normalised by a softmax (pointwise aggregated attention): the SiLU'ed scores are
divided by the (fixed) maximum length, so the model can express how much history there is. The time
bias of query position i uses the time of the NEXT event (the moment the prediction is asked for:
the reference's "ts(next item) - ts(current item)"); the query time stands in after the last event.
Time differences are bucketed as the reference does, ``floor(ln(max(|dt|, 1) seconds) / 0.301)``, clamped to
``num_buckets``.

Inputs: item embedding (+ an event-type embedding: action types as features), times sqrt(D), plus a
learned absolute position, dropout. Outputs are L2-normalised (so are the item vectors they are
compared with: cosine similarity over a temperature in the loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG2 = 0.301  # the reference divides the natural log of the seconds by 0.301 (about 2.3 buckets per doubling)
EPS = 1e-6


def jagged_to_padded(values: torch.Tensor, offsets: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``values [N, ...]`` into ``[B, width, ...]`` (rows front-aligned, zeros after); also the (row, column)
    of every value, for the way back (``padded[row, col]``)."""
    lengths = offsets[1:] - offsets[:-1]
    row = torch.repeat_interleave(torch.arange(len(lengths), device=values.device), lengths)
    col = torch.arange(len(values), device=values.device) - offsets[row]
    padded = values.new_zeros((len(lengths), width, *values.shape[1:]))
    padded[row, col] = values
    return padded, row, col


class RelativeBias(nn.Module):
    """Learned bias per relative position (j - i) plus per bucket of the time from key j to the query's next event."""

    def __init__(self, max_len: int, num_buckets: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.num_buckets = num_buckets
        self.position = nn.Parameter(torch.empty(2 * max_len - 1).normal_(std=0.02))
        self.time = nn.Parameter(torch.empty(num_buckets + 1).normal_(std=0.02))

    def forward(self, timestamps: torch.Tensor, next_ts: torch.Tensor) -> torch.Tensor:
        """``[B, n, n]`` from front-aligned ``timestamps [B, n]`` and each position's next time ``next_ts [B, n]``."""
        n = timestamps.shape[1]
        steps = torch.arange(n, device=timestamps.device)
        relative = steps.unsqueeze(0) - steps.unsqueeze(1) + self.max_len - 1  # [i, j] -> j - i, shifted
        dt = (next_ts.unsqueeze(2) - timestamps.unsqueeze(1)).abs().clamp(min=1).float()
        buckets = (dt.log() / LOG2).long().clamp(0, self.num_buckets)
        return self.position[relative].unsqueeze(0) + self.time[buckets]


class HSTULayer(nn.Module):
    def __init__(self, dim: int, heads: int, attention_dim: int, linear_dim: int, dropout: float, max_len: int, bias: RelativeBias) -> None:
        super().__init__()
        self.heads, self.attention_dim, self.linear_dim, self.max_len = heads, attention_dim, linear_dim, max_len
        self.uvqk = nn.Parameter(torch.empty(dim, heads * (2 * linear_dim + 2 * attention_dim)).normal_(std=0.02))
        self.out = nn.Linear(heads * linear_dim, dim)
        nn.init.xavier_uniform_(self.out.weight)
        self.dropout = dropout
        self.bias = bias

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, timestamps: torch.Tensor, next_ts: torch.Tensor) -> torch.Tensor:
        """``x [N, D]`` jagged; ``timestamps`` / ``next_ts`` padded ``[B, n]``."""
        h, da, dl = self.heads, self.attention_dim, self.linear_dim
        mixed = F.silu(F.layer_norm(x, x.shape[-1:], eps=EPS) @ self.uvqk)
        u, v, q, k = mixed.split([h * dl, h * dl, h * da, h * da], dim=-1)
        n = timestamps.shape[1]
        (q_pad, row, col), k_pad, v_pad = jagged_to_padded(q, offsets, n), jagged_to_padded(k, offsets, n)[0], jagged_to_padded(v, offsets, n)[0]
        batch = len(offsets) - 1
        scores = torch.einsum("bnhd,bmhd->bhnm", q_pad.view(batch, n, h, da), k_pad.view(batch, n, h, da))
        scores = scores + self.bias(timestamps, next_ts).unsqueeze(1)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        weights = F.silu(scores) / self.max_len * causal
        attended = torch.einsum("bhnm,bmhd->bnhd", weights, v_pad.view(batch, n, h, dl)).reshape(batch, n, h * dl)[row, col]
        mixed_out = u * F.layer_norm(attended, attended.shape[-1:], eps=EPS)
        return x + self.out(F.dropout(mixed_out, self.dropout, self.training))


class HSTU(nn.Module):
    def __init__(self, num_items: int, max_len: int, num_event_types: int = 1, dim: int = 64, layers: int = 2, heads: int = 1,
                 attention_dim: int = 64, linear_dim: int = 64, dropout: float = 0.2, num_buckets: int = 128) -> None:
        super().__init__()
        self.num_items, self.max_len, self.dim = num_items, max_len, dim
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.actions = nn.Embedding(num_event_types + 1, dim, padding_idx=0) if num_event_types > 0 else None
        self.positions = nn.Embedding(max_len, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            HSTULayer(dim, heads, attention_dim, linear_dim, dropout, max_len, RelativeBias(max_len, num_buckets)) for _ in range(layers)
        )
        for table in (self.items, self.positions, *([self.actions] if self.actions is not None else [])):
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, items: torch.Tensor, offsets: torch.Tensor, timestamps: torch.Tensor, query_ts: torch.Tensor,
                event_types: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, D]`` L2-normalised outputs of jagged ``items [N]`` (ids + 1) with ``offsets [B + 1]``."""
        lengths = offsets[1:] - offsets[:-1]
        n = max(int(lengths.max()) if len(lengths) else 1, 1)
        if n > self.max_len:
            raise ValueError(f"a sequence of {n} events is longer than max_len {self.max_len}")
        x = self.items(items)
        if self.actions is not None and event_types is not None:
            x = x + self.actions(event_types.clamp(max=self.actions.num_embeddings - 1))
        ts_pad, _, col = jagged_to_padded(timestamps, offsets, n)
        x = x * math.sqrt(self.dim) + self.positions(col)
        # Each position's "next" time: the following event's, the query time after the last one.
        next_ts = torch.cat([ts_pad[:, 1:], ts_pad.new_zeros(len(lengths), 1)], dim=1)
        next_ts[torch.arange(len(lengths), device=items.device), (lengths - 1).clamp(min=0)] = query_ts
        x = self.input_dropout(x)
        for layer in self.layers:
            x = layer(x, offsets, ts_pad, next_ts)
        return F.normalize(x, dim=-1, eps=EPS)

    def last(self, items: torch.Tensor, offsets: torch.Tensor, timestamps: torch.Tensor, query_ts: torch.Tensor,
             event_types: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, D]``: the output at each row's newest event."""
        out = self(items, offsets, timestamps, query_ts, event_types)
        return out[(offsets[1:] - 1).clamp(min=0)]

    @property
    def item_vectors(self) -> torch.Tensor:
        """``[I, D]`` L2-normalised item embeddings (the padding row left out)."""
        return F.normalize(self.items.weight[1:], dim=-1, eps=EPS)
