"""RecBole's SASRec within a wall-clock budget: the side-by-side peer of ``benchmarks/generative.py``.

Runs in RecBole's OWN virtual environment (``benchmarks/generative_ml100k.py`` makes it), never recforge's: it
imports only RecBole, torch and numpy. Input: ``<data>/<name>/<name>.inter`` (user, item, position), written
by ``generative_ml100k.py`` from ``recforge export recbole``. Training is RecBole's own ``Trainer`` (its data
augmentation: one example per prefix, full cross-entropy with ``train_neg_sample_args: None``, validation each
epoch, the best epoch on valid NDCG@10); the budget only cuts the epoch in progress once it is spent, like
recforge's ``budget_seconds``, and that epoch is validated before training stops.

The test split is scored twice: by RecBole's evaluator (no seen-item filtering: RecBole does not filter for
sequential models; top-k by ``torch.topk``) and by recforge's rule, computed here on RecBole's scores (ties count
against the model; with ``--filter-seen`` the items of the model's input history are not candidates, the target
always is). Prints one JSON object on its last line.

    <recbole-venv>/bin/python benchmarks/peers/recbole_sasrec.py --data DIR --name NAME --budget 120 [--filter-seen]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole's checkpoints hold its Config object

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed

KS = (5, 10, 50)


class BudgetSpent(Exception):
    """Raised after the validation of the epoch in which the budget ran out."""


class _Until:
    """The training loader, cut short at the first batch past the deadline; counts examples and step time."""

    def __init__(self, loader, trainer: BudgetTrainer) -> None:  # type: ignore[no-untyped-def]
        self.loader = loader
        self.trainer = trainer

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):  # type: ignore[no-untyped-def]
        t = self.trainer
        started = time.perf_counter()
        try:
            for interaction in self.loader:
                yield interaction
                t.examples += len(interaction)
                t.steps += 1
                if time.perf_counter() - t.started > t.budget:
                    t.out_of_time = True
                    break
        finally:
            t.step_seconds += time.perf_counter() - started


class BudgetTrainer(Trainer):
    """RecBole's Trainer; ``fit`` stops after validating the epoch in which ``budget`` seconds ran out."""

    def __init__(self, config, model, budget: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, model)
        self.budget = budget
        self.examples = self.steps = 0
        self.step_seconds = 0.0
        self.out_of_time = False
        self.curve: list[dict[str, float]] = []
        self.epochs_run = 0

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):  # type: ignore[no-untyped-def]
        loss = super()._train_epoch(_Until(train_data, self), epoch_idx, loss_func, show_progress)
        self.epochs_run = epoch_idx + 1
        self._last_loss = loss
        return loss

    def _after_valid(self, epoch_idx: int, valid_score: float) -> None:
        self.curve.append({"epoch": epoch_idx + 1, "seconds": round(time.perf_counter() - self.started, 2),
                           "train_loss": float(self._last_loss), "valid_ndcg@10": float(valid_score)})
        if self.out_of_time:
            raise BudgetSpent

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):  # type: ignore[no-untyped-def]
        self.started = time.perf_counter()
        with contextlib.suppress(BudgetSpent):
            super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn=self._after_valid)
        return self.best_valid_score, self.best_valid_result


@torch.no_grad()
def our_ranks(trainer: BudgetTrainer, test_data, item_field: str, filter_seen: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """0-based rank of each test target by recforge's rule, with the user and target internal ids."""
    model = trainer.model.eval()
    list_field = item_field + trainer.config["LIST_SUFFIX"]
    ranks, users, targets = [], [], []
    for interaction, _, _, positive in test_data:
        scores = model.full_sort_predict(interaction).view(len(positive), -1).float()
        scores[:, 0] = -torch.inf  # RecBole's padding item
        if filter_seen:
            seen = torch.zeros_like(scores, dtype=torch.bool)
            seen.scatter_(1, interaction[list_field], True)
            seen[:, 0] = False
            seen[torch.arange(len(positive)), positive] = False
            scores = scores.masked_fill(seen, -torch.inf)
        target = scores.gather(1, positive.unsqueeze(1))
        ranks.append(((scores >= target).sum(1) - 1).numpy())
        users.append(interaction[trainer.config["USER_ID_FIELD"]].numpy())
        targets.append(positive.numpy())
    return np.concatenate(ranks), np.concatenate(users), np.concatenate(targets)


def metrics_of(ranks: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in KS:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    out["mrr@10"] = float(np.where(ranks < 10, 1.0 / (ranks + 1.0), 0.0).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="RecBole data_path (holds <name>/<name>.inter)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--budget", type=float, required=True, help="training seconds (validation included)")
    parser.add_argument("--filter-seen", action="store_true", help="score the test like recforge's loo_full_seen_filtered")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=2048, help="RecBole's default train_batch_size")
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=".", help="folder for RecBole's checkpoints")
    args = parser.parse_args()

    config = Config(model="SASRec", dataset=args.name, config_dict={
        "data_path": args.data, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "MAX_ITEM_LIST_LENGTH": args.max_len,
        "loss_type": "CE", "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": list(KS), "valid_metric": "NDCG@10", "epochs": 100_000,
        "stopping_step": args.patience, "train_batch_size": args.batch_size, "eval_batch_size": 4096,
        "use_gpu": False, "seed": args.seed, "reproducibility": True, "show_progress": False,
        "checkpoint_dir": os.path.join(args.work, "saved"), "log_wandb": False,
    })
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - started
    init_seed(config["seed"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = BudgetTrainer(config, model, args.budget)
    trainer.fit(train_data, valid_data, verbose=False, saved=True)
    train_seconds = time.perf_counter() - started - data_seconds
    recbole_test = {k.lower(): float(v) for k, v in trainer.evaluate(test_data, load_best_model=True).items()}
    ranks, users, targets = our_ranks(trainer, test_data, config["ITEM_ID_FIELD"], args.filter_seen)
    print(json.dumps({
        "recbole_version": __import__("recbole").__version__, "torch": torch.__version__, "numpy": np.__version__,
        "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1), "interactions": int(dataset.inter_num),
        "train_examples_per_epoch": len(train_data._dataset), "data_seconds": round(data_seconds, 2),
        "train_seconds": round(train_seconds, 2), "step_seconds": round(trainer.step_seconds, 2), "examples": trainer.examples,
        "steps": trainer.steps, "epochs": trainer.epochs_run, "curve": trainer.curve,
        "best_epoch": max(trainer.curve, key=lambda c: c["valid_ndcg@10"])["epoch"] - 1 if trainer.curve else None,  # 0-based, as recforge's
        "examples_per_second": round(trainer.examples / max(trainer.step_seconds, 1e-9), 1),
        "recbole_evaluator_test": recbole_test, "test": metrics_of(ranks), "filter_seen": args.filter_seen,
        "test_targets": {str(u): str(i) for u, i in zip(dataset.id2token(config["USER_ID_FIELD"], users),
                                                          dataset.id2token(config["ITEM_ID_FIELD"], targets), strict=True)},
        "config": {k: str(config[k]) for k in ("train_batch_size", "MAX_ITEM_LIST_LENGTH", "n_layers", "n_heads", "hidden_size",
                                               "inner_size", "hidden_dropout_prob", "attn_dropout_prob", "learning_rate",
                                               "loss_type", "stopping_step")},
    }))


if __name__ == "__main__":
    main()
