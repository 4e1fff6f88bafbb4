"""Beam search constrained to valid semantic IDs (the trie of ``training.generative.semantic_ids``).

At depth ``d`` every beam holds a trie node (its prefix); the level's logits are masked to the codes the
node allows, so a beam can only ever spell a prefix of a real ID, and after the last level (the
disambiguation level) its node IS an item: every prediction maps back to exactly one item. When fewer
valid IDs exist than beams, the remaining beams score ``-inf`` and come back as item ``-1``.

``exclude [B, I]`` leaves items out per query (seen-item filtering): a code is masked too where every
item under the prefix it completes is left out (``Trie.exhausted``), so the beam returns the best
remaining items instead of spending slots on excluded ones that a later filter would drop.

    scores [B, beam]  --+ log p(code | prefix) [B, beam, V_d], masked--> top beam of [B, beam * V_d]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.generative.semantic_ids import Trie
from training.models.tiger import TIGER


@torch.no_grad()
def constrained_beam_search(model: TIGER, memory: torch.Tensor, padding: torch.Tensor, trie: Trie, beam: int,
                            exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(items [B, beam], log-probabilities [B, beam])``, best first; item -1 where no valid ID was left."""
    batch, device = memory.shape[0], memory.device
    exhausted = trie.exhausted(exclude) if exclude is not None else None
    queries = torch.arange(batch, device=device)

    def valid(depth: int, node: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``[N, V_d]``: the codes that continue ``node`` towards an item that is not left out for ``query``."""
        child = trie.child[depth][node, : model.sizes[depth]]
        if exhausted is None:
            return child >= 0
        return (child >= 0) & ~exhausted[depth][query.unsqueeze(1), child.clamp(min=0)]

    # Depth 0 has one live beam per query; later depths lay a query's beams side by side (``TIGER.decode_beams``).
    first = model.level_logits(model.decode(memory, padding, torch.zeros(batch, 0, dtype=torch.long, device=device))[:, -1], 0)
    first = F.log_softmax(first.float(), dim=-1).masked_fill(~valid(0, torch.zeros_like(queries), queries), float("-inf"))
    width = min(beam, first.shape[1])
    score, code = first.topk(width, dim=1)
    if width < beam:
        score = torch.cat([score, score.new_full((batch, beam - width), float("-inf"))], dim=1)
        code = torch.cat([code, code.new_zeros((batch, beam - width))], dim=1)
    prefix = code.reshape(-1, 1)
    node = torch.where(torch.isfinite(score.reshape(-1)), trie.child[0][0, code.reshape(-1)], 0)
    for depth in range(1, trie.levels):
        size = model.sizes[depth]
        logits = model.level_logits(model.decode_beams(memory, padding, prefix, beam)[:, -1], depth)
        logp = F.log_softmax(logits.float(), dim=-1).masked_fill(~valid(depth, node, queries.repeat_interleave(beam)), float("-inf"))
        total = (score.reshape(-1, 1) + logp).reshape(batch, beam * size)
        score, flat = total.topk(beam, dim=1)
        source = (torch.arange(batch, device=device).unsqueeze(1) * beam + flat // size).reshape(-1)
        code = (flat % size).reshape(-1)
        prefix = torch.cat([prefix[source], code.unsqueeze(1)], dim=1)
        node = trie.child[depth][node[source], code]
        node = torch.where(torch.isfinite(score.reshape(-1)), node, 0)  # dead beams park at a valid row
    items = torch.where(torch.isfinite(score), node.reshape(batch, beam), -1)
    return items, score
