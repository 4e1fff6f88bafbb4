"""Tasks: a generative model and its loss (``forward(batch) -> loss``), and how it serves a query
(``scores`` over the catalogue for SASRec and HSTU; ``recommend`` by constrained beam search for TIGER).

    SASRecTask  every position of every training sequence predicts the next item:
                full softmax over the catalogue, or in-batch + uniform negatives with log-Q (``losses.sampled_softmax``)
    HSTUTask    the same targets, cosine logits over a temperature against the positive and
                ``negatives`` uniform items shared by the batch (accidental hits masked), or the full softmax
    TIGERTask   teacher-forced cross-entropy over the target's codes, level by level
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training import losses
from training.generative.beam import constrained_beam_search
from training.generative.config import HSTUConfig, SASRecConfig, SoftmaxKind, TIGERConfig
from training.generative.data import Batch, JaggedBatch, SequenceBatch
from training.generative.full_softmax import full_softmax_cross_entropy
from training.generative.semantic_ids import SemanticIdTable, Trie
from training.models.hstu import HSTU
from training.models.sasrec import SASRec
from training.models.tiger import TIGER

USER_HASH = 1_000_003  # a prime: hashed user tokens spread dense user ids over the buckets


class SASRecTask(nn.Module):
    def __init__(self, model: SASRec, config: SASRecConfig, log_q: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.register_buffer("log_q", log_q.float())

    def forward(self, batch: SequenceBatch) -> torch.Tensor:
        hidden, aligned, lengths = self.model(batch.items)
        steps = torch.arange(aligned.shape[1] - 1, device=aligned.device)
        has_next = steps.unsqueeze(0) < (lengths - 1).unsqueeze(1)  # position t predicts t + 1
        states = hidden[:, :-1][has_next]
        targets = aligned[:, 1:][has_next] - 1
        vectors = self.model.item_vectors
        cfg = self.config
        if cfg.loss is SoftmaxKind.FULL:
            return full_softmax_cross_entropy(states, vectors, targets)
        num_items = self.model.num_items
        negatives = torch.randint(num_items, (cfg.negatives,), device=targets.device)
        return losses.sampled_softmax(states, vectors[targets], targets, cfg.temperature, log_q=self.log_q[targets],
                                      extra_items=vectors[negatives], extra_ids=negatives,
                                      extra_log_q=losses.log_uniform_correction(cfg.negatives, num_items))

    @torch.no_grad()
    def scores(self, queries: SequenceBatch) -> torch.Tensor:
        return self.model.last(queries.items) @ self.model.item_vectors.T


class HSTUTask(nn.Module):
    def __init__(self, model: HSTU, config: HSTUConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config

    def _run(self, batch: Batch) -> tuple[torch.Tensor, JaggedBatch]:
        jagged = batch.jagged() if isinstance(batch, SequenceBatch) else batch
        types = jagged.event_types if self.config.action_types else None
        return self.model(jagged.items, jagged.offsets, jagged.timestamps, jagged.query_ts, types), jagged

    def forward(self, batch: Batch) -> torch.Tensor:
        out, jagged = self._run(batch)
        ends = jagged.offsets[1:]
        rows = torch.repeat_interleave(torch.arange(len(jagged), device=out.device), jagged.lengths)
        has_next = torch.arange(len(out), device=out.device) + 1 < ends[rows]
        states = out[has_next]
        targets = jagged.items.roll(-1)[has_next] - 1
        vectors = self.model.item_vectors
        cfg = self.config
        if cfg.loss is SoftmaxKind.FULL:
            return full_softmax_cross_entropy(states / cfg.temperature, vectors, targets)
        negatives = torch.randint(self.model.num_items, (cfg.negatives,), device=out.device)
        positive = (states * vectors[targets]).sum(-1, keepdim=True)
        negative = (states @ vectors[negatives].T).masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
        logits = torch.cat([positive, negative], dim=1) / cfg.temperature
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=out.device))

    @torch.no_grad()
    def scores(self, queries: Batch) -> torch.Tensor:
        out, jagged = self._run(queries)
        return out[(jagged.offsets[1:] - 1).clamp(min=0)] @ self.model.item_vectors.T


class TIGERTask(nn.Module):
    """TIGER with its ID table: ``codes`` row ``i + 1`` is item ``i``'s ID (row 0: no item, all -1)."""

    def __init__(self, model: TIGER, config: TIGERConfig, table: SemanticIdTable) -> None:
        super().__init__()
        self.model = model
        self.config = config
        codes = torch.from_numpy(table.codes).long()
        self.register_buffer("codes", torch.cat([torch.full((1, codes.shape[1]), -1), codes]))
        self.trie = Trie(table)

    def _memory(self, batch: SequenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        history = batch.items[:, -self.config.max_items :]
        # Columns that are padding in every row add encoder tokens that only get masked: drop them (exact; with
        # length-grouped batches the encoder then reads about as many tokens as the rows hold).
        filled = (history > 0).any(0)
        history = history[:, int(filled.float().argmax()) if bool(filled.any()) else history.shape[1] - 1 :]
        tokens, levels, padding = self.model.encoder_tokens(self.codes[history], batch.users * USER_HASH)
        return self.model.encode(tokens, levels, padding), padding

    def forward(self, batch: SequenceBatch) -> torch.Tensor:
        target = self.codes[batch.targets]  # [B, C]
        with torch.autocast(batch.items.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            memory, padding = self._memory(batch)
            logits = self.model.decode(memory, padding, target[:, :-1])
        logits = logits.float()
        return sum((F.cross_entropy(self.model.level_logits(logits[:, level], level), target[:, level])
                    for level in range(self.model.levels)), torch.zeros((), device=logits.device)) / self.model.levels

    @torch.no_grad()
    def recommend(self, queries: SequenceBatch, beam: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, beam]`` item ids (-1: no valid ID left), best first; never an item flagged in ``exclude [B, I]``."""
        self.trie.to(self.codes.device)
        memory, padding = self._memory(queries)
        return constrained_beam_search(self.model, memory, padding, self.trie, beam, exclude)[0]
