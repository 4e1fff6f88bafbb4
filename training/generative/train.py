"""``train_generative(cfg) -> GenerativeResult``: the trainer's order and pieces (``training.train``'s
early stopping, DDP set-up, checkpoints and ``TrainResult``) for SASRec, HSTU and TIGER.

Config, seed, data, model, optimiser, (resume), loop, eval, checkpoint. An epoch is one pass over the
training rows: one sequence per user (SASRec, HSTU: every position of it is a target) or one example
per (user, position) (TIGER). Validation (the second-to-last items) picks the epoch; the test split
(the last items) is evaluated once, with the selected weights. ``budget_seconds`` stops training at
the first step past it (then the epoch is validated as usual), and ``curve`` records the learning
curve reached (seconds, epoch, training loss, validation metric). The curve and the training seconds are kept in
the checkpoint, so a resumed run reports them over all its calls (``seconds_all_calls``), a killed one's too.
With ``ema_decay`` the weights' moving average is what is validated, kept and tested (``averaging``). A file
``STOP`` in ``run.out_dir`` ends a run at the end of its current epoch, tested, and continuable by a later call.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from training.checkpoint import warm_start
from training.data import BatchLayout
from training.generative.averaging import WeightAverage
from training.generative.config import GenerativeConfig, GenerativeKind, SequenceSource
from training.generative.data import PrefixData, SequenceBatch, SequenceData, shards_with_codes
from training.generative.datasets import beauty_ids, load_beauty, load_movielens
from training.generative.evaluate import KS, full_ranks, rank_metrics, ranks_from_lists, seen_items
from training.generative.schedule import apply_schedule
from training.generative.semantic_ids import SemanticIdTable, with_missing
from training.generative.tasks import HSTUTask, SASRecTask, TIGERTask
from training.models.hstu import HSTU
from training.models.sasrec import SASRec
from training.models.tiger import TIGER
from training.train import (
    ProgressFn,
    TrainResult,
    _distributed,
    _mean_across_ranks,
    _save,
    resume_state,
)


@dataclass
class GenerativeResult(TrainResult):
    curve: list[dict[str, float]] = field(default_factory=list)  # every call's, when resumed (seconds over all calls)
    seconds_all_calls: float = 0.0
    protocol: str = ""
    seconds: float = 0.0
    step_seconds: float = 0.0  # time in the training steps alone (batching, forward, backward, update): no evaluation


def train_generative(cfg: GenerativeConfig, data: SequenceData | None = None, ids: SemanticIdTable | None = None,
                     progress: ProgressFn | None = None) -> GenerativeResult:
    """Train one generative model; ``data`` (and TIGER's ``ids``) override ``cfg.data`` (tests pass tiny data)."""
    # -- config
    run = cfg.run
    if run.threads:
        torch.set_num_threads(run.threads)
    rank, world, device, owns_group = _distributed(run.device)
    try:
        # -- seed
        torch.manual_seed(run.seed)
        # -- data
        if data is None:
            data, loaded_ids = load_sequence_data(cfg)
            ids = ids if ids is not None else loaded_ids
        task = build_generative_task(cfg, data, ids).to(device)
        examples_data: Any = PrefixData.of(data, cfg.tiger.max_items, cfg.data.length_groups, run.batch_size) if cfg.model is GenerativeKind.TIGER else (
            data.with_layout(BatchLayout.JAGGED if cfg.model is GenerativeKind.HSTU else BatchLayout.PADDED)
            .grouped(cfg.data.length_groups, run.batch_size))
        wrapped: nn.Module = nn.parallel.DistributedDataParallel(task) if world > 1 else task
        # -- optimiser
        optimiser = torch.optim.AdamW(task.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        out_dir = Path(run.out_dir) if run.out_dir else None
        state, resumed = resume_state(out_dir if run.resume else None, task, optimiser)
        # A resumed run continues its own weights; a fresh one may start from another run's (warm start).
        warm = warm_start(task, Path(run.init_from)) if run.init_from and resumed is None else None
        averaged = WeightAverage(task, cfg.ema_decay, state.averaged) if cfg.ema_decay else None
        state.averaged = averaged.shadow if averaged is not None else None  # checkpointed with the rest of the state
        # -- loop
        steps_per_epoch = math.ceil(len(examples_data) / run.batch_size)
        total = run.max_steps or steps_per_epoch * run.max_epochs
        examples, started, step_seconds, before = 0, time.perf_counter(), 0.0, state.seconds
        out_of_time = False
        while state.next_epoch < run.max_epochs and not state.stopped and not out_of_time and not (run.max_steps and state.step >= run.max_steps):
            epoch = state.next_epoch
            order = examples_data.epoch_order(run.seed, epoch)
            loss_sum, batches = torch.zeros((), device=device), 0
            wrapped.train()
            epoch_started = time.perf_counter()
            for b in range(steps_per_epoch):
                rows = order[b * run.batch_size : (b + 1) * run.batch_size][rank::world]
                loss = wrapped(examples_data.batch(rows).to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                apply_schedule(optimiser, cfg.schedule, cfg.lr, state.step, steps_per_epoch)
                optimiser.step()
                state.step += 1
                if averaged is not None:
                    averaged.update(state.step)
                loss_sum += loss.detach()
                batches += 1
                examples += len(rows) * world
                if progress is not None and rank == 0:
                    progress(state.step, total, float(loss.detach()), examples / max(time.perf_counter() - started, 1e-9))
                out_of_time = bool(cfg.budget_seconds) and time.perf_counter() - started > cfg.budget_seconds
                if out_of_time or (run.max_steps and state.step >= run.max_steps):
                    break
            step_seconds += time.perf_counter() - epoch_started
            state.losses.append(_mean_across_ranks(loss_sum / max(batches, 1), world))
            state.next_epoch = epoch + 1
            # -- eval (validation picks the epoch)
            if state.next_epoch % run.eval_every_epochs == 0 or state.next_epoch == run.max_epochs or out_of_time:
                key = f"ndcg@{run.valid_k}"
                raw = evaluate_generative(task, data, "valid", cfg) if averaged is not None else {}
                with averaged.swapped_in() if averaged is not None else contextlib.nullcontext():
                    valid = evaluate_generative(task, data, "valid", cfg)
                    state.observe(valid, key, epoch, task, run.patience)  # keeps the average's weights when on
                state.curve.append({"epoch": state.next_epoch, "seconds": round(before + time.perf_counter() - started, 2),
                                    "train_loss": state.losses[-1], f"valid_{key}": valid[key],
                                    f"valid_hr@{run.valid_k}": valid[f"hr@{run.valid_k}"]}
                                   | ({f"valid_raw_{key}": raw[key]} if raw else {}))
            # -- checkpoint
            state.seconds = before + time.perf_counter() - started
            if out_dir is not None and rank == 0:
                _save(out_dir, cfg, data, state, task, optimiser)  # type: ignore[arg-type]
            if out_dir is not None and _stop_requested(out_dir, rank, world, device):
                break
        elapsed = time.perf_counter() - started
        if state.best_task is not None:
            task.load_state_dict(state.best_task)
        test = evaluate_generative(task, data, "test", cfg)
        return GenerativeResult(
            config=cfg, steps=state.step, epochs=state.next_epoch, best_epoch=state.best_epoch, valid=state.best_valid, test=test,  # type: ignore[arg-type]
            epoch_losses=state.losses, examples_per_second=examples / max(elapsed, 1e-9), task=task,
            checkpoint=(out_dir / "checkpoint.pt") if out_dir is not None else None, versions=dict(data.versions),
            resumed_from_epoch=resumed, curve=state.curve, protocol=data.protocol if cfg.model is not GenerativeKind.TIGER else _tiger_protocol(data, cfg),
            seconds=elapsed, step_seconds=step_seconds, warm_started=warm, seconds_all_calls=before + elapsed,
        )
    finally:
        if owns_group:
            dist.destroy_process_group()


STOP_FILE = "STOP"


def _stop_requested(out_dir: Path, rank: int, world: int, device: torch.device) -> bool:
    """Whether a file ``STOP`` in the run's ``out_dir`` asks it to end after this epoch (checkpointed): the run is then
    tested on its best epoch as if it had run out of epochs, and the file is removed, so a later call continues it."""
    flag = torch.tensor(float((out_dir / STOP_FILE).exists()), device=device)
    if world > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank stops at the same epoch
    if bool(flag) and rank == 0:
        (out_dir / STOP_FILE).unlink(missing_ok=True)
    return bool(flag)


def load_sequence_data(cfg: GenerativeConfig) -> tuple[SequenceData, SemanticIdTable | None]:
    """The data ``cfg.data`` names, and the ID table it brings (Beauty's published IDs), if any."""
    source = cfg.data
    if source.source is SequenceSource.BEAUTY:
        data, index = load_beauty(Path(source.path), max_len=source.max_len, filter_seen=source.filter_seen)
        has_ids = any(Path(source.path).glob("*.index.json"))
        return data, beauty_ids(Path(source.path), index) if has_ids else None
    if source.source is SequenceSource.MOVIELENS:
        return load_movielens(Path(source.path), max_len=source.max_len, filter_seen=source.filter_seen), None
    from warehouse.settings import data_root

    shards = Path(source.path) if source.path else data_root(None) / "training_data" / "sequence_shards"
    data, codes = shards_with_codes(shards, max_len=source.max_len, filter_seen=source.filter_seen, dataset=source.dataset)
    return data, with_missing(codes) if codes is not None else None


def build_generative_task(cfg: GenerativeConfig, data: SequenceData, ids: SemanticIdTable | None = None) -> nn.Module:
    max_len = data.train.items.shape[1]
    if cfg.model is GenerativeKind.SASREC:
        s = cfg.sasrec
        return SASRecTask(SASRec(data.num_items, max_len, s.dim, s.layers, s.heads, s.dropout), s, data.log_q)
    if cfg.model is GenerativeKind.HSTU:
        h = cfg.hstu
        return HSTUTask(HSTU(data.num_items, max_len, data.num_event_types if h.action_types else 0, h.dim, h.layers, h.heads,
                             h.attention_dim, h.linear_dim, h.dropout, h.num_buckets), h)
    if ids is None:
        raise ValueError("TIGER needs a semantic-ID table (import one, or build recforge's)")
    t = cfg.tiger
    return TIGERTask(TIGER(ids.sizes, t.max_items, t.user_buckets, t.dim, t.layers, t.heads, t.ff, t.dropout, t.recency_positions), t, ids)


@torch.no_grad()
def evaluate_generative(task: nn.Module, data: SequenceData, split: str, cfg: GenerativeConfig) -> dict[str, float]:
    """Leave-one-out metrics of one split: K = ``valid_k`` on validation, K in {5, 10, 50} (and MRR) on test."""
    task.eval()
    queries: SequenceBatch = getattr(data, split)
    device = next(task.parameters()).device
    ks = (cfg.run.valid_k,) if split == "valid" else KS
    if isinstance(task, TIGERTask):
        t = cfg.tiger
        wanted = t.valid_users if split == "valid" else t.test_users
        if wanted and wanted < len(queries):
            queries = queries.rows(_user_sample(len(queries), wanted, seed=1 if split == "valid" else 0))
        beam = t.valid_beam if split == "valid" else t.beam
        ks = tuple(k for k in ks if k <= beam)
        lists = []
        for start in range(0, len(queries), 64):
            part = queries.rows(torch.arange(start, min(start + 64, len(queries)))).to(device)
            lists.append(task.recommend(part, beam, seen_items(part, data.num_items) if data.filter_seen else None).cpu())
        return rank_metrics(ranks_from_lists(torch.cat(lists), queries.targets - 1, data.num_items), ks)
    scorer = task.scores  # type: ignore[union-attr]
    ranks = full_ranks(lambda part: scorer(part.to(device)), queries, data.num_items, filter_seen=data.filter_seen)
    return rank_metrics(ranks, ks, None if split == "valid" else data.num_items)


def _user_sample(users: int, wanted: int, seed: int) -> torch.Tensor:
    """``wanted`` of ``users`` query rows, a seeded random sample in row order: the same at every evaluation. Not
    the first rows: in Beauty's file order the first 2,000 users are far harder than the rest (TIGER's test Recall@10
    0.021 on them, 0.055 on all)."""
    return torch.randperm(users, generator=torch.Generator().manual_seed(seed))[:wanted].sort().values


def _tiger_protocol(data: SequenceData, cfg: GenerativeConfig) -> str:
    sample = f"_sample{cfg.tiger.test_users}" if cfg.tiger.test_users and cfg.tiger.test_users < len(data.test) else ""
    return data.protocol.replace("_full", f"_beam{cfg.tiger.beam}{sample}")
