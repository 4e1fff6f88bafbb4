"""Heterogeneous neighbour sampling in plain torch, behind PyG's ``NeighborSampler`` interface.

PyG's ``NeighborSampler`` (used by ``NeighborLoader`` and ``LinkNeighborLoader``) samples by calling
``pyg-lib`` or ``torch-sparse``; with neither installed (no wheels for this CPU torch) it raises
ImportError in ``_sample``. :class:`TorchNeighborSampler` keeps everything else of PyG's sampler (the
CSC conversion, the loaders, the link-seed handling, the subgraph filtering) and replaces only
``_sample`` for heterogeneous seeds with vectorised torch:

    for each hop, for each edge type (src -> dst), for the dst nodes added in the previous hop:
        degree <= k: take every incoming edge
        degree  > k: draw k incoming edges with replacement (uniformly, or by ``weight`` when the
                     edge type has one: a search in the cumulative weights) and keep the distinct ones

Edge ids are positions in the CSC arrays, as pyg-lib returns them, so PyG maps edge attributes back.
Memory per batch is bounded by ``seeds x prod(fanout) x edge types``, not by the graph.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import HeteroSamplerOutput, NeighborSampler

WEIGHT = "weight"  # the edge attribute that weights sampling (co-occurrence counts, similarities)


class TorchNeighborSampler(NeighborSampler):
    """PyG's neighbour sampler with a pure-torch heterogeneous ``_sample`` (see the module docstring).

    Args:
        data: The graph.
        num_neighbors: Neighbours per hop (every edge type alike).
        seed: Seeds this sampler's random draws (each loader worker continues the same generator).
    """

    def __init__(self, data: HeteroData, num_neighbors: list[int], seed: int = 0) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*without a 'pyg-lib' installation.*")
            super().__init__(data, num_neighbors)  # no weight_attr: PyG refuses weighted sampling without pyg-lib
        self.generator = torch.Generator().manual_seed(seed)
        # Cumulative weights per edge type in CSC order (PyG's permutation), float64 so long rows keep their resolution.
        self.cumulative: dict[str, Tensor] = {}
        for edge_type in self.edge_types:
            store = data[edge_type]
            if WEIGHT in store:
                perm = self.perm.get(edge_type)
                weight = store[WEIGHT] if perm is None else store[WEIGHT][perm]
                self.cumulative[self.to_rel_type[edge_type]] = torch.cumsum(weight.double(), 0)

    def _sample(self, seed: dict[str, Tensor] | Tensor, seed_time: Any = None, **kwargs: Any) -> HeteroSamplerOutput:
        if not isinstance(seed, dict):
            raise TypeError("TorchNeighborSampler samples heterogeneous graphs only")
        if seed_time is not None or self.disjoint:
            raise NotImplementedError("temporal and disjoint sampling need pyg-lib")
        node = {t: seed.get(t, torch.empty(0, dtype=torch.long)).long() for t in self.node_types}
        local = {t: self._local_index(t, node[t]) for t in self.node_types}
        frontier = dict(node)
        rows: dict[str, list[Tensor]] = {r: [] for r in self.to_edge_type}
        cols: dict[str, list[Tensor]] = {r: [] for r in self.to_edge_type}
        edges: dict[str, list[Tensor]] = {r: [] for r in self.to_edge_type}
        sampled_nodes = {t: [len(node[t])] for t in self.node_types}
        sampled_edges: dict[str, list[int]] = {r: [] for r in self.to_edge_type}
        fanout = self.num_neighbors.get_mapped_values(self.edge_types)
        for hop in range(self.num_neighbors.num_hops):
            added: dict[str, list[Tensor]] = {t: [] for t in self.node_types}
            for rel, (src, _, dst) in self.to_edge_type.items():
                ids = self._draw(rel, frontier[dst], fanout[rel][hop])
                targets = torch.searchsorted(self.colptr_dict[rel], ids, right=True) - 1  # the column (dst node) of each position
                sources = self.row_dict[rel][ids]
                new = _distinct(sources[local[src][sources] < 0], self.num_nodes[src])
                local[src][new] = torch.arange(len(node[src]), len(node[src]) + len(new))
                node[src] = torch.cat([node[src], new])
                added[src].append(new)
                rows[rel].append(local[src][sources])
                cols[rel].append(local[dst][targets])
                edges[rel].append(ids)
                sampled_edges[rel].append(len(ids))
            frontier = {t: torch.cat(parts) if parts else node[t][:0] for t, parts in added.items()}
            for t in self.node_types:
                sampled_nodes[t].append(len(frontier[t]))
        to_type = self.to_edge_type
        return HeteroSamplerOutput(
            node=node,
            row={to_type[r]: torch.cat(v) for r, v in rows.items()},
            col={to_type[r]: torch.cat(v) for r, v in cols.items()},
            edge={to_type[r]: torch.cat(v) for r, v in edges.items()},
            batch=None,
            num_sampled_nodes=sampled_nodes,
            num_sampled_edges={to_type[r]: v for r, v in sampled_edges.items()},
        )

    def _local_index(self, node_type: str, seeds: Tensor) -> Tensor:
        """``[N]`` global -> local index of this batch's nodes of one type (-1: not sampled yet)."""
        index = torch.full((self.num_nodes[node_type],), -1, dtype=torch.long)
        index[seeds] = torch.arange(len(seeds))
        return index

    def _draw(self, rel: str, dst: Tensor, k: int) -> Tensor:
        """CSC positions of the sampled incoming edges of ``dst`` (all of them when ``k < 0``)."""
        colptr = self.colptr_dict[rel]
        if len(dst) == 0 or k == 0 or len(self.row_dict[rel]) == 0:
            return torch.empty(0, dtype=torch.long)
        start, end = colptr[dst], colptr[dst + 1]
        degree = end - start
        full = degree <= k if k >= 0 else torch.ones_like(degree, dtype=torch.bool)
        # Every edge of the low-degree nodes: the ranges [start, end) laid end to end.
        lengths = degree[full]
        offsets = torch.repeat_interleave(start[full] - torch.cumsum(lengths, 0) + lengths, lengths)
        taken = offsets + torch.arange(int(lengths.sum()))
        if full.all():
            return taken
        lo, hi = start[~full], end[~full]
        u = torch.rand(len(lo), k, generator=self.generator, dtype=torch.float64)
        cumulative = self.cumulative.get(rel)
        if cumulative is None:
            drawn = lo.unsqueeze(1) + (u * (hi - lo).unsqueeze(1)).long()
        else:
            below = torch.where(lo > 0, cumulative[(lo - 1).clamp(min=0)], torch.zeros_like(lo, dtype=torch.float64))
            target = below.unsqueeze(1) + u * (cumulative[hi - 1] - below).unsqueeze(1)
            drawn = torch.searchsorted(cumulative, target, right=True)
            drawn = torch.minimum(torch.maximum(drawn, lo.unsqueeze(1)), (hi - 1).unsqueeze(1))
        return torch.cat([taken, _distinct(drawn.reshape(-1), len(self.row_dict[rel]))])


def _distinct(values: Tensor, size: int) -> Tensor:
    """The distinct values (sorted) of ``values`` in ``[0, size)``: a mark per value, no sort."""
    if len(values) == 0:
        return values
    marks = torch.zeros(size, dtype=torch.bool)
    marks[values] = True
    return marks.nonzero().squeeze(1)
