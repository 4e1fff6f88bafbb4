"""SASRec (Kang and McAuley, ICDM 2018): causal self-attention over the item-id history.

    items [B, L] (ids + 1, left-padded)  --align right-->  s1 s2 ... sn 0 0      (position 0 = oldest kept)
        --embed (shared with the output) x sqrt(D) + position, dropout--> pre-LN transformer blocks, causal mask
        --> hidden [B, L, D]: row b, position t summarises s1..st and predicts s(t+1)

Realigning to the right lets the plain causal mask do all the masking: a real position never sees a
padding position (padding comes after it), and a padding position's output is never used.

The item embedding is scaled by sqrt(D) before the position is added (as the reference implementation,
SASRec.pytorch, and the Transformer do): the embeddings start at std 0.02, and unscaled they were a small
part of the residual stream next to the blocks' outputs, so the model learnt which item it was looking
at slowly (Beauty, full softmax: training loss 9.1 after the first epoch, 7.7 after 22).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def align_right(items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``[B, L]`` rows moved to the front (``s1..sn 0..0``); also returns each row's length."""
    lengths = (items > 0).sum(1)
    width = items.shape[1]
    source = (torch.arange(width, device=items.device).unsqueeze(0) + (width - lengths).unsqueeze(1)) % width
    return items.gather(1, source), lengths


class SASRec(nn.Module):
    def __init__(self, num_items: int, max_len: int, dim: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.num_items = num_items
        self.scale = math.sqrt(dim)
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim * 4, dropout=dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(hidden [B, W, D], right-aligned items [B, W], lengths [B])`` for left-padded ``items [B, L]``, with W the
        longest row's length (at most L)."""
        aligned, lengths = align_right(items)
        # Columns after the batch's longest row hold only padding that no real position attends to: drop them
        # (exact; the step costs what the batch's longest history needs, not max_len).
        width = max(int(lengths.max()), 1) if len(lengths) else aligned.shape[1]
        aligned = aligned[:, :width]
        x = self.items(aligned) * self.scale + self.positions(torch.arange(width, device=items.device))
        causal = nn.Transformer.generate_square_subsequent_mask(width, device=items.device)
        hidden = self.norm(self.blocks(self.dropout(x), mask=causal, is_causal=True))
        return hidden, aligned, lengths

    def last(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, D]``: the state after each row's newest item (what scores the next one)."""
        hidden, _, lengths = self(items)
        return hidden[torch.arange(len(items), device=items.device), (lengths - 1).clamp(min=0)]

    @property
    def item_vectors(self) -> torch.Tensor:
        """``[I, D]``: the output layer (the input embeddings without the padding row)."""
        return self.items.weight[1:]
