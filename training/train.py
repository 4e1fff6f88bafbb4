"""``train(cfg) -> TrainResult``: one importable entry point, in nanoGPT's order: config, seed, data,
model, optimiser, (resume), loop, eval, checkpoint.

Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) the same function runs DDP, with the backend
chosen from the device (NCCL on CUDA, Gloo on CPU). Every rank draws the same epoch permutation and
takes rows ``rank, rank + W, ...`` of each global batch, so ranks see disjoint rows that cover the
epoch, and the averaged gradients are those of the global batch. Evaluation is deterministic and runs
on every rank (so early stopping agrees); the training loss is averaged across ranks; only rank 0
writes checkpoints.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import torch
import torch.distributed as dist
from torch import nn

from training.checkpoint import code_version, load_checkpoint, save_checkpoint, warm_start
from training.config import AnnKind, ContentGroup, DataSource, ModelKind, TrainConfig
from training.data.coat import coat_from_labels, load_coat
from training.data.pairs import PairData
from training.data.two_tower import TwoTowerData, two_tower_data, with_content
from training.data.two_tower_content import content_from_warehouse
from training.device import uses_cuda
from training.evaluate import evaluate
from training.models import MatrixFactorization, TwoTower
from training.models.two_tower_features import ContentEncoder, content_neighbours
from training.tasks import MFTask, TwoTowerRetrieval, TwoTowerTask

Data = PairData | TwoTowerData
ProgressFn = Callable[[int, int, float, float], None]  # step, total steps (estimate), loss, examples/s
TWO_TOWER_KS = (10, 50, 100)


@dataclass
class TrainResult:
    config: TrainConfig
    steps: int
    epochs: int
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]
    epoch_losses: list[float]
    examples_per_second: float
    task: nn.Module
    checkpoint: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    rows_seen: torch.Tensor | None = None  # this rank's training rows of the first epoch it ran (for the DDP test)
    resumed_from_epoch: int | None = None
    warm_started: dict[str, str] | None = None  # run.init_from: how each parameter was initialised from it


def train(cfg: TrainConfig, data: Data | None = None, progress: ProgressFn | None = None) -> TrainResult:
    """Train one model; ``data`` overrides ``cfg.data`` (tests pass tiny in-memory data)."""
    # -- config
    run = cfg.run
    if run.threads:
        torch.set_num_threads(run.threads)
    rank, world, device, owns_group = _distributed(run.device)
    try:
        # -- seed: the same on every rank, so the replicas start equal
        torch.manual_seed(run.seed)
        # -- data
        data = data if data is not None else load_data(cfg)
        # -- model
        task = build_task(cfg, data).to(device)
        wrapped: nn.Module = nn.parallel.DistributedDataParallel(task) if world > 1 else task
        # -- optimiser
        optimiser = _optimiser(cfg, task)
        out_dir = Path(run.out_dir) if run.out_dir else None
        state, resumed = resume_state(out_dir if run.resume else None, task, optimiser)
        # A resumed run continues its own weights; a fresh one may start from another run's (warm start).
        warm = warm_start(task, Path(run.init_from)) if run.init_from and resumed is None else None
        # -- loop
        steps_per_epoch = math.ceil(len(data) / run.batch_size)
        total = run.max_steps or steps_per_epoch * run.max_epochs
        rows_seen: torch.Tensor | None = None
        examples, started = 0, time.perf_counter()
        while state.next_epoch < run.max_epochs and not state.stopped and not (run.max_steps and state.step >= run.max_steps):
            epoch = state.next_epoch
            order = data.epoch_order(run.seed, epoch)
            epoch_rows, loss_sum, batches = [], torch.zeros((), device=device), 0
            wrapped.train()
            for b in range(steps_per_epoch):
                rows = order[b * run.batch_size : (b + 1) * run.batch_size][rank::world]
                epoch_rows.append(rows)
                loss = wrapped(data.batch(rows).to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                state.step += 1
                loss_sum += loss.detach()
                batches += 1
                examples += len(rows) * world
                if progress is not None and rank == 0:
                    progress(state.step, total, float(loss.detach()), examples / max(time.perf_counter() - started, 1e-9))
                if run.max_steps and state.step >= run.max_steps:
                    break
            if rows_seen is None:
                rows_seen = torch.cat(epoch_rows)
            state.losses.append(_mean_across_ranks(loss_sum / max(batches, 1), world))
            state.next_epoch = epoch + 1
            # -- eval (validation picks the epoch; the test split is never looked at here)
            if state.next_epoch % run.eval_every_epochs == 0 or state.next_epoch == run.max_epochs:
                valid = evaluate_split(task, data, "valid", cfg)
                state.observe(valid, _valid_key(cfg), epoch, task, run.patience)
            # -- checkpoint
            if out_dir is not None and rank == 0:
                _save(out_dir, cfg, data, state, task, optimiser)
        if state.best_task is not None:
            task.load_state_dict(state.best_task)
        test = evaluate_split(task, data, "test", cfg)
        elapsed = time.perf_counter() - started
        return TrainResult(
            config=cfg, steps=state.step, epochs=state.next_epoch, best_epoch=state.best_epoch, valid=state.best_valid,
            test=test, epoch_losses=state.losses, examples_per_second=examples / max(elapsed, 1e-9), task=task,
            checkpoint=(out_dir / "checkpoint.pt") if out_dir is not None else None, versions=dict(data.versions),
            rows_seen=rows_seen, resumed_from_epoch=resumed, warm_started=warm,
        )
    finally:
        if owns_group:
            dist.destroy_process_group()


def load_data(cfg: TrainConfig) -> Data:
    """The data ``cfg.data`` names: the Coat folder, or a warehouse's tables."""
    from warehouse import contracts as C
    from warehouse.settings import data_root
    from warehouse.store import Warehouse

    source = cfg.data
    if source.source is DataSource.COAT:
        return load_coat(Path(source.path), source)
    store = Warehouse(data_root(source.path or None))
    if source.source is DataSource.LABELS:
        labels = store.read(C.LABELS_DEBIASED_LABELS)
        ratings = store.read(C.EVAL_RANDOM_RATINGS)
        ratings = ratings.filter(pc.equal(ratings["dataset"], source.dataset))
        return coat_from_labels(labels, ratings, source, _table_versions(store, C.LABELS_DEBIASED_LABELS, C.EVAL_RANDOM_RATINGS))
    examples = store.read(C.TRAINING_TWO_TOWER_EXAMPLES)
    frequencies = store.read(C.TRAINING_ITEM_FREQUENCIES) if store.exists(C.TRAINING_ITEM_FREQUENCIES) else None
    graph = (C.TRAINING_GRAPH_NODES, C.TRAINING_GRAPH_EDGES) if cfg.model is ModelKind.HGNN else ()
    data = two_tower_data(examples, frequencies, cfg.two_tower.max_history, dataset=source.dataset,
                          versions=_table_versions(store, C.TRAINING_TWO_TOWER_EXAMPLES, C.TRAINING_ITEM_FREQUENCIES, *graph))
    if cfg.model is ModelKind.HGNN:  # the two-tower examples and the item graph beside them (training/hgnn/)
        from training.hgnn import hgnn_data_from_warehouse

        return hgnn_data_from_warehouse(store, data, cfg.hgnn)
    tt = cfg.two_tower
    use_content = tt.content.strip().lower() not in ("none", "")
    return with_content(data, content_from_warehouse(store, data.num_items, tt.hash_buckets, tt.price_buckets) if use_content else None)


def build_task(cfg: TrainConfig, data: Data) -> nn.Module:
    if cfg.model is ModelKind.MF:
        return MFTask(MatrixFactorization(data.num_users, data.num_items, cfg.mf.dim), cfg.mf)
    if not isinstance(data, TwoTowerData):
        raise TypeError("the two-tower and HGNN models train on two-tower examples")
    tt = cfg.two_tower
    if cfg.model is ModelKind.HGNN:  # trains the HGNN first (link loss), then the towers over its item embeddings train here
        from training.hgnn import HGNNData, build_hgnn_task, with_graph

        return build_hgnn_task(cfg, data if isinstance(data, HGNNData) else with_graph(data, cfg.hgnn))[0]
    groups = tt.content_groups(data.content.available if data.content is not None else ())
    encoder = ContentEncoder(data.content, groups, tt.hidden) if data.content is not None and groups else None
    model = TwoTower(data.num_items, tt.dim, tt.hidden, tt.user_buckets, encoder=encoder, id_dropout=tt.id_dropout)
    known = data.popularity > 0  # items without a training positive are served from content (or the unseen row)
    model.set_known(known)
    if data.content is not None and ContentGroup.TEXT in groups and tt.content_neighbours:
        model.set_neighbours(*content_neighbours(data.content.text, data.content.has_text, known, tt.content_neighbours))
    return TwoTowerTask(model, tt, data.log_q)


def evaluate_split(task: nn.Module, data: Data, split: str, cfg: TrainConfig) -> dict[str, float]:
    """Metrics of one split: the Coat protocol's (K = 1, 3, eval_k) for MF; full-catalogue K = 10, 50,
    100, overall, on tail, cold and new items and on short-history users for the two-tower and HGNN models."""
    task.eval()
    if isinstance(data, PairData):
        assert isinstance(task, MFTask)
        ranking = getattr(data, split)
        published = ranking.protocol.startswith("coat")  # the Coat protocol reports K = 1, 3, 5; full ranking K = 10, 50, 100
        ks = (cfg.run.valid_k,) if split == "valid" else (tuple(sorted({1, 3, cfg.run.eval_k})) if published else TWO_TOWER_KS)
        return evaluate(task.scores, ranking, ks)
    assert isinstance(task, TwoTowerTask)
    queries = getattr(data, split)
    retrieval = TwoTowerRetrieval(task.model, data.num_items)
    device = retrieval.items.device

    def vectors(index: torch.Tensor) -> torch.Tensor:
        return retrieval.users(queries.history[index].to(device), index.to(device))

    def scorer(index: torch.Tensor) -> torch.Tensor:
        return vectors(index) @ retrieval.items.T

    ks = (cfg.run.valid_k,) if split == "valid" else TWO_TOWER_KS
    out = evaluate(scorer, queries.ranking, ks)
    if split == "test":
        out |= {f"tail_{k}": v for k, v in evaluate(scorer, queries.ranking, ks, items=data.tail_items).items()}
        out |= {f"short_{k}": v for k, v in evaluate(scorer, queries.ranking, ks, users=queries.short).items()}
        out |= {f"cold_{k}": v for k, v in evaluate(scorer, queries.ranking, ks, items=data.cold_items).items()}
        out |= {f"new_{k}": v for k, v in evaluate(scorer, queries.ranking, ks, items=data.new_items).items()}
        if cfg.ann.kind is not AnnKind.NONE:  # the exact metrics above stay the protocol; the index is reported beside them
            from training.ann import ann_report

            out |= ann_report(scorer, vectors, retrieval.items, queries.ranking, ks, cfg.ann)
    return out


@dataclass
class _EarlyStopping:
    next_epoch: int = 0
    step: int = 0
    best: float = -math.inf
    best_epoch: int = -1
    best_valid: dict[str, float] = field(default_factory=dict)
    bad: int = 0
    stopped: bool = False
    losses: list[float] = field(default_factory=list)
    best_task: dict[str, Any] | None = None
    # The generative trainer's learning curve and training seconds of every call so far: a resumed run reports its
    # whole curve, also when the call before it was killed.
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    averaged: dict[str, Any] | None = None  # the generative trainer's weight average (``ema_decay``), when on

    def observe(self, valid: dict[str, float], key: str, epoch: int, task: nn.Module, patience: int) -> None:
        if valid[key] > self.best:
            self.best, self.best_epoch, self.best_valid, self.bad = valid[key], epoch, valid, 0
            self.best_task = copy.deepcopy(task.state_dict())
        else:
            self.bad += 1
            self.stopped = bool(patience) and self.bad > patience


def _valid_key(cfg: TrainConfig) -> str:
    return f"{'map' if cfg.model is ModelKind.MF else 'recall'}@{cfg.run.valid_k}"


def _optimiser(cfg: TrainConfig, task: nn.Module) -> torch.optim.Optimizer:
    if cfg.model is ModelKind.MF:
        return torch.optim.Adam(task.parameters(), lr=cfg.mf.lr)
    return torch.optim.AdamW(task.parameters(), lr=cfg.two_tower.lr, weight_decay=cfg.two_tower.weight_decay)


def resume_state(
    out_dir: Path | None, task: nn.Module, optimiser: torch.optim.Optimizer
) -> tuple[_EarlyStopping, int | None]:
    """Load the last checkpoint under ``out_dir`` into ``task`` and ``optimiser`` (with the RNG state).

    Returns the early-stopping state to continue from and the epoch resumed at (None: a fresh start,
    also when ``out_dir`` is None or holds no checkpoint).
    """
    saved = load_checkpoint(out_dir) if out_dir is not None else None
    if saved is None:
        return _EarlyStopping(), None
    task.load_state_dict(saved["state"]["task"])
    optimiser.load_state_dict(saved["state"]["optimiser"])
    state = _EarlyStopping(**saved["state"]["early_stopping"])
    torch.set_rng_state(saved["state"]["rng"])
    return state, state.next_epoch


def _save(out_dir: Path, cfg: TrainConfig, data: Data, state: _EarlyStopping, task: nn.Module, optimiser: torch.optim.Optimizer) -> None:
    meta = {
        "config": cfg.to_dict(),
        "inputs": dict(data.versions),
        "content": list(getattr(getattr(task, "model", None), "content_groups", ())),  # the two-tower's content groups
        "code_version": code_version(),
        "step": state.step,
        "epoch": state.next_epoch,
        "best_epoch": state.best_epoch,
        "metrics": {"valid": state.best_valid, "train_loss": state.losses[-1] if state.losses else None},
    }
    fields = {k: v for k, v in vars(state).items() if k != "best_task"}
    payload = {"task": task.state_dict(), "optimiser": optimiser.state_dict(), "early_stopping": fields | {"best_task": state.best_task},
               "rng": torch.get_rng_state()}
    save_checkpoint(out_dir, meta, payload)


def _mean_across_ranks(value: torch.Tensor, world: int) -> float:
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return float(value)


def _distributed(device_name: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether this call started the process group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = uses_cuda(device_name)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if world <= 1:
        return 0, 1, device, False
    owns = not dist.is_initialized()
    if owns:
        if use_cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, owns


def _table_versions(store: Any, *contracts: Any) -> dict[str, str]:
    out = {}
    for contract in contracts:
        manifest = store.manifest(contract)
        out[f"{contract.layer.value}/{contract.name}"] = ",".join(f"{k}:{v.get('hash', v.get('content_hash', ''))}" for k, v in sorted(manifest.items()))
    return out
