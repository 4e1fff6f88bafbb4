"""2T-HGNN (Spotify, 2024): a heterogeneous GNN over the item graph, two towers on top of its embeddings.

    HGNN (training/hgnn/graph.py for the graph)
      item input  = Linear(text embedding) + id embedding (trained items; new items share a row) + sum of code embeddings
      attribute input = embedding of the attribute value (one shared row for values added after training)
      L x HeteroConv{edge type: SAGEConv}  (sum over edge types, residual, LayerNorm)  ->  Linear -> L2 norm   [n, graph_dim]

    two towers over the frozen HGNN item table G [I, graph_dim]
      item  i       --> ItemTower(id embedding (trained items only) + Linear(G[i]))                -> v [dim]
      history [B,H] --> masked mean(Linear(G[h]) + id embedding (trained items only)) --MLP--> u [dim]

The user tower sees items only, so a new user is served from their history without retraining, and a new
item from its HGNN embedding (computed from its content and attribute edges) with the shared id row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from training.models.two_tower import ItemTower, _mlp

ITEM = "item"


class HGNN(nn.Module):
    """GraphSAGE-style heterogeneous message passing (PyG ``HeteroConv`` of ``SAGEConv``) over items and attributes.

    Args:
        metadata: ``HeteroData.metadata()`` of the item graph (node types, edge types).
        num_items: Items with an id embedding row each (plus one shared row for untrained items).
        feature_dim: Width of the items' text embeddings (0: none).
        attribute_sizes: Values per attribute node type.
        hidden: Width of every input projection and layer.
        dim: Output width.
        layers: Message-passing layers (as many as sampled hops).
        code_vocab: Semantic-ID codes per level (0: no codes); codes are embedded per (level, code).
        code_levels: Levels of the semantic IDs.
        id_embedding: Whether trained items get an id embedding.
    """

    def __init__(self, metadata: tuple[list[str], list[tuple[str, str, str]]], num_items: int, feature_dim: int,
                 attribute_sizes: dict[str, int], hidden: int, dim: int, layers: int, code_vocab: int = 0, code_levels: int = 0,
                 id_embedding: bool = True) -> None:
        super().__init__()
        self.num_items, self.code_vocab, self.code_pad = num_items, code_vocab, code_vocab * code_levels
        self.text = nn.Linear(feature_dim, hidden) if feature_dim else None
        self.ids = nn.Embedding(num_items + 1, hidden) if id_embedding else None
        self.codes = nn.Embedding(code_vocab * code_levels + 1, hidden, padding_idx=code_vocab * code_levels) if code_vocab else None
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.attributes = nn.ModuleDict({name: nn.Embedding(n + 1, hidden) for name, n in attribute_sizes.items()})  # last row: values added later
        _, edge_types = metadata
        self.convs = nn.ModuleList(HeteroConv({et: SAGEConv(hidden, hidden) for et in edge_types}, aggr="sum") for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, dim)

    def inputs(self, graph: HeteroData) -> dict[str, torch.Tensor]:
        """Each node type's input vectors ``[n_t, hidden]`` (a sampled subgraph or the whole graph)."""
        items = graph[ITEM]
        x = self.bias.expand(items.num_nodes, -1)
        if self.text is not None:
            x = x + self.text(items.x)
        if self.ids is not None:
            x = x + self.ids(torch.where(items.trained, items.n, self.num_items))
        if self.codes is not None and "codes" in items:
            levels = torch.arange(items.codes.shape[1], device=x.device) * self.code_vocab
            index = torch.where(items.codes >= 0, items.codes + levels, self.code_pad)
            x = x + self.codes(index).sum(1)
        out = {ITEM: x}
        for name in self.attributes:
            embed: nn.Embedding = self.attributes[name]  # type: ignore[assignment]
            out[name] = embed(graph[name].n.clamp(max=embed.num_embeddings - 1))
        return out

    def forward(self, graph: HeteroData) -> torch.Tensor:
        """``[n_items, dim]`` L2-normalised embeddings of the graph's item nodes (in its order)."""
        x = self.inputs(graph)
        edges = {et: graph[et].edge_index for et in graph.edge_types}
        for conv, norm in zip(self.convs, self.norms, strict=True):
            messages = conv(x, edges)
            x = {t: v + F.relu(norm(messages[t])) if t in messages else v for t, v in x.items()}
        return F.normalize(self.out(x[ITEM]), dim=-1)


class GraphItemTower(nn.Module):
    """The two-tower item tower (``ItemTower``) with the HGNN embedding as its content feature.

    Untrained items share the "unseen" id row; in training, ``id_dropout`` of the items go through it too,
    so that row and the content path learn to score an item from its HGNN embedding alone.
    """

    graph: torch.Tensor  # [I, graph_dim] buffer
    trained: torch.Tensor  # [I] bool buffer

    def __init__(self, graph: torch.Tensor, trained: torch.Tensor, num_items: int, dim: int, hidden: int, id_dropout: float = 0.0) -> None:
        super().__init__()
        self.num_items, self.id_dropout = num_items, id_dropout
        self.register_buffer("graph", graph)
        self.register_buffer("trained", trained)
        self.tower = ItemTower(num_items, dim, hidden, content_dim=graph.shape[1])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        known = self.trained[items]
        if self.training and self.id_dropout > 0:
            known = known & (torch.rand(items.shape, device=items.device) >= self.id_dropout)
        return self.tower(torch.where(known, items, self.num_items), self.graph[items])


class GraphUserTower(nn.Module):
    """Masked mean of the history's HGNN embeddings (projected) and id embeddings, through an MLP."""

    graph: torch.Tensor  # [I, graph_dim] buffer
    trained: torch.Tensor  # [I] bool buffer

    def __init__(self, graph: torch.Tensor, trained: torch.Tensor, num_items: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.num_items = num_items
        self.register_buffer("graph", graph)
        self.register_buffer("trained", trained)
        self.content = nn.Linear(graph.shape[1], hidden)
        self.history = nn.Embedding(num_items + 2, hidden, padding_idx=0)  # ids + 1; last row: untrained items
        self.mlp = _mlp(hidden, hidden, dim)

    def forward(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        mask = history > 0
        items = (history - 1).clamp(min=0)
        ids = torch.where(mask & self.trained[items], history, torch.where(mask, self.num_items + 1, 0))
        embedded = self.content(self.graph[items]) + self.history(ids)
        pooled = (embedded * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return F.normalize(self.mlp(pooled), dim=-1)


class HGNNTwoTower(nn.Module):
    """The HGNN (kept for serving new items) and the two towers over its item embedding table.

    Args:
        hgnn: The trained HGNN.
        graph: ``[I, graph_dim]`` its embedding of every item.
        trained: ``[I]`` bool: items with a training interaction.
        num_items: Ids the towers give their own row (``< num_items``).
        dim: Tower output width.
        hidden: Tower hidden width.
        id_dropout: Share of training items the item tower sees without their id (``GraphItemTower``).
    """

    def __init__(self, hgnn: HGNN, graph: torch.Tensor, trained: torch.Tensor, num_items: int, dim: int, hidden: int,
                 id_dropout: float = 0.0) -> None:
        super().__init__()
        self.hgnn = hgnn
        self.item_tower = GraphItemTower(graph, trained, num_items, dim, hidden, id_dropout)
        self.user_tower = GraphUserTower(graph, trained, num_items, dim, hidden)

    def forward(self, history: torch.Tensor, items: torch.Tensor, users: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_tower(history, users), self.item_tower(items)

    def set_graph(self, graph: torch.Tensor, trained: torch.Tensor) -> None:
        """Serve a (larger) item table, e.g. with items added after training (ids beyond the towers' rows share the unseen row)."""
        for tower in (self.item_tower, self.user_tower):
            tower.graph, tower.trained = graph.to(tower.graph.device), trained.to(tower.graph.device)
