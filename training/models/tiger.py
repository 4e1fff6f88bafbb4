"""TIGER (Rajput et al., NeurIPS 2023): a transformer encoder-decoder that reads the semantic-ID tokens
of a user's history and writes the next item's ID, one code per step.

    encoder tokens  [user] a1 b1 c1 e1  a2 b2 c2 e2 ... (oldest first, PAD after; C codes per item; no user token
                    when ``user_buckets`` is 0)
                    token ids: 0 PAD | 1..U hashed user | code tokens (level l, code c: base + offset_l + c)
                    + level embedding (C levels, and one for the user token) + position (the token's index, or with
                    ``recency_positions`` its distance from the end of the history: the newest item's codes always
                    sit at the same positions, whatever the history's length)
    decoder input   [BOS] a b c          (teacher forcing: the target's first C - 1 codes)
    decoder output  logits of level 0 | level 1 | ... | level C - 1 (each over that level's codes only)

Level-wise outputs are slices of one output layer over all levels' codes; training takes each
level's slice for its cross-entropy, decoding masks the slice with the trie of valid IDs.
"""

from __future__ import annotations

import torch
from torch import nn

PAD, BOS = 0, 0


class TIGER(nn.Module):
    def __init__(self, sizes: tuple[int, ...], max_items: int, user_buckets: int, dim: int = 128, layers: int = 4, heads: int = 4,
                 ff: int = 1024, dropout: float = 0.1, recency_positions: bool = False) -> None:
        super().__init__()
        self.recency_positions = recency_positions
        self.sizes = tuple(int(s) for s in sizes)
        self.levels = len(self.sizes)
        self.user_buckets = user_buckets
        self.register_buffer("offsets", torch.tensor([0, *self.sizes]).cumsum(0)[:-1], persistent=False)
        codes = sum(self.sizes)
        self.code_base = 1 + user_buckets
        self.tokens = nn.Embedding(self.code_base + codes, dim, padding_idx=PAD)
        self.token_levels = nn.Embedding(self.levels + 1, dim)  # the last row marks the user token
        self.positions = nn.Embedding(1 + max_items * self.levels, dim)
        self.decoder_tokens = nn.Embedding(1 + codes, dim)  # 0: BOS, then every level's codes
        self.decoder_levels = nn.Embedding(self.levels, dim)
        block = nn.TransformerEncoderLayer(dim, heads, ff, dropout, activation="gelu", batch_first=True, norm_first=True)
        encoder = nn.TransformerEncoder(block, layers, nn.LayerNorm(dim), enable_nested_tensor=False)  # pre-LN cannot nest anyway
        self.transformer = nn.Transformer(dim, heads, layers, layers, ff, dropout, activation="gelu", custom_encoder=encoder,
                                          batch_first=True, norm_first=True)
        self.head = nn.Linear(dim, codes)
        for table in (self.tokens, self.token_levels, self.positions, self.decoder_tokens, self.decoder_levels):
            nn.init.normal_(table.weight, std=0.02)

    def encoder_tokens(self, codes: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens [B, 1 + H C], levels, padding mask)`` from the history's codes ``[B, H, C]`` (-1 = no item; any
        padding first: it is moved behind the real items) and the hashed ``users [B]`` (``[B, H C]`` and the users
        unused when ``user_buckets`` is 0)."""
        batch, history, levels = codes.shape
        present = codes[:, :, 0] >= 0
        order = torch.sort((~present).long(), dim=1, stable=True).indices  # real items first, order kept
        codes = codes.gather(1, order.unsqueeze(-1).expand(-1, -1, levels))
        present = present.gather(1, order)
        tokens = torch.where(present.unsqueeze(-1), codes + self.offsets + self.code_base, PAD).reshape(batch, history * levels)
        level = torch.arange(levels, device=codes.device).repeat(history).expand(batch, -1)
        if self.user_buckets:
            user = (users % self.user_buckets + 1).unsqueeze(1)
            tokens = torch.cat([user, tokens], dim=1)
            level = torch.cat([torch.full((batch, 1), levels, device=codes.device), level], dim=1)
        padding = tokens == PAD
        padding[:, 0] &= bool(self.user_buckets)  # without a user token an empty history still has one key: its PAD
        return tokens, level, padding

    def token_positions(self, padding: torch.Tensor) -> torch.Tensor:
        """``[B, S]`` position of each encoder token: its index, or with ``recency_positions`` 0 for the user token
        and padding and otherwise the count of real tokens from it to the end (the newest item's last code: 1)."""
        index = torch.arange(padding.shape[1], device=padding.device).expand_as(padding)
        if not self.recency_positions:
            return index
        filled = (~padding).sum(1, keepdim=True)
        zero = padding | (index == 0) if self.user_buckets else padding
        return torch.where(zero, 0, filled - index)

    def encode(self, tokens: torch.Tensor, levels: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x = self.tokens(tokens) + self.token_levels(levels) + self.positions(self.token_positions(padding))
        return self.transformer.encoder(x, src_key_padding_mask=padding)

    def decode(self, memory: torch.Tensor, padding: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """``[B, d + 1, codes]`` output logits after ``[BOS] + prefix`` (``prefix [B, d]`` codes of levels 0..d-1)."""
        depth = prefix.shape[1]
        shifted = prefix + self.offsets[:depth] + 1
        inputs = torch.cat([torch.full((len(prefix), 1), BOS, device=prefix.device, dtype=torch.long), shifted], dim=1)
        x = self.decoder_tokens(inputs) + self.decoder_levels(torch.arange(depth + 1, device=prefix.device))
        causal = nn.Transformer.generate_square_subsequent_mask(depth + 1, device=prefix.device)
        hidden = self.transformer.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=padding)
        return self.head(hidden)

    def decode_beams(self, memory: torch.Tensor, padding: torch.Tensor, prefix: torch.Tensor, beams: int) -> torch.Tensor:
        """``decode`` for ``beams`` prefixes per query (``prefix [B * beams, d]``, ``memory [B, S, D]`` NOT copied per
        beam): a query's beams are laid side by side as one target sequence with a block-diagonal causal mask, so
        the memory is projected once per query instead of once per beam. Returns ``[B * beams, d + 1, codes]``."""
        depth = prefix.shape[1]
        batch = memory.shape[0]
        shifted = prefix + self.offsets[:depth] + 1
        inputs = torch.cat([torch.full((len(prefix), 1), BOS, device=prefix.device, dtype=torch.long), shifted], dim=1)
        x = self.decoder_tokens(inputs) + self.decoder_levels(torch.arange(depth + 1, device=prefix.device))
        x = x.reshape(batch, beams * (depth + 1), -1)
        block = torch.arange(beams * (depth + 1), device=prefix.device) // (depth + 1)
        step = torch.arange(beams * (depth + 1), device=prefix.device)
        allowed = (block.unsqueeze(1) == block.unsqueeze(0)) & (step.unsqueeze(0) <= step.unsqueeze(1))
        mask = torch.zeros(allowed.shape, device=prefix.device).masked_fill(~allowed, float("-inf"))
        hidden = self.transformer.decoder(x, memory, tgt_mask=mask, memory_key_padding_mask=padding)
        return self.head(hidden.reshape(batch * beams, depth + 1, -1))

    def level_logits(self, logits: torch.Tensor, level: int) -> torch.Tensor:
        """The slice of ``logits [..., codes]`` that scores level ``level``'s codes."""
        start = int(self.offsets[level])
        return logits[..., start : start + self.sizes[level]]
