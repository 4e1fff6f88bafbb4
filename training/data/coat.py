"""Coat under the protocol of Lee et al. (SIGIR 2021, "Dual Unbiased Recommender Learning for Implicit
Feedback"), whose code re-implements Rel-MF; and the same protocol fed from recforge's label table.

The protocol, step by step (``coat_protocol``):

1. Ratings >= 4 are positives, in the biased training ratings and in the randomly exposed test ratings.
2. Validation: for each user, 30 % of their training ratings (``int(0.3 n)``, any rating) are held out,
   chosen by ``np.random.RandomState(12345).choice`` over the user's rated items in item order
   (a fresh generator per user, as the published code does).
3. Training pairs: every (user, item) pair; label 1 for the training positives left after the hold-out,
   0 for everything else (unrated, rated below 4, and held-out pairs alike).
4. Propensity theta_i = (training positives of i / max)^0.5; MF-DU's negative side (1 - n_i / max)^0.5.
5. Test: each user's randomly exposed test items only (16 per user) are ranked; NDCG@5 with the ideal
   DCG over min(#relevant, 5), Recall@5 and MAP@5 over all relevant items, users without a relevant
   item scoring 0; the mean over users, then over seeds.
6. Validation ranks each user's held-out positives among the items that are not their training
   positives (users without a held-out positive are skipped); it picks the epoch, never the test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from training.config import DataConfig
from training.data.pairs import PairData, RankingSplit

COAT_PROTOCOL = "coat_lee2021"


def read_matrix(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, ndmin=2)


def load_coat(folder: Path, config: DataConfig = DataConfig()) -> PairData:
    """The Coat folder (``train.ascii``, ``test.ascii``) under the protocol."""
    folder = Path(folder)
    versions = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16] for name in ("train.ascii", "test.ascii")}
    return coat_protocol(read_matrix(folder / "train.ascii"), read_matrix(folder / "test.ascii"), config, versions)


def holdout(rated: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The items held out of one user's rated items (sorted item ids): Lee et al.'s per-user draw."""
    return np.random.RandomState(seed).choice(rated, int(share * len(rated)), replace=False)


def coat_protocol(train: np.ndarray, test: np.ndarray, config: DataConfig, versions: dict[str, str] | None = None,
                  propensity: np.ndarray | None = None) -> PairData:
    """``PairData`` from dense rating matrices (0 = unrated).

    Args:
        train: ``[U, I]`` biased training ratings.
        test: ``[U, I]`` randomly exposed test ratings.
        config: Threshold, hold-out share and seed, propensity power.
        versions: Input content hashes for the checkpoint.
        propensity: ``[U, I]`` per-pair propensities to use instead of the popularity ones (the label table's).
    """
    users, items = train.shape
    positive = train >= config.positive_rating
    held = np.zeros_like(positive)
    for u in range(users):
        rated = np.flatnonzero(train[u])
        held[u, holdout(rated, config.valid_share, config.valid_seed)] = True
    train_pos = positive & ~held
    valid_pos = positive & held
    counts = train_pos.sum(0).astype(np.float64)
    share = counts / max(counts.max(), 1.0)
    theta = np.broadcast_to(share ** config.propensity_power, (users, items)) if propensity is None else propensity
    theta_neg = np.broadcast_to((1 - share) ** config.propensity_power, (users, items))
    grid_u, grid_i = np.meshgrid(np.arange(users), np.arange(items), indexing="ij")
    exposed = torch.from_numpy(test > 0)
    return PairData(
        num_users=users,
        num_items=items,
        users=torch.from_numpy(grid_u.ravel()),
        items=torch.from_numpy(grid_i.ravel()),
        labels=torch.from_numpy(train_pos.ravel().astype(np.float32)),
        propensity=torch.from_numpy(np.ascontiguousarray(theta).ravel().astype(np.float32)),
        inverse_propensity=torch.from_numpy(np.ascontiguousarray(theta_neg).ravel().astype(np.float32)),
        valid=RankingSplit(torch.from_numpy(valid_pos), torch.from_numpy(~train_pos), skip_empty=True, protocol=f"{COAT_PROTOCOL}_valid"),
        test=RankingSplit(torch.from_numpy(test >= config.positive_rating) & exposed, exposed, skip_empty=False,
                          map_by_all_relevant=True, protocol=COAT_PROTOCOL),
        versions=dict(versions or {}),
        dataset="coat",
    )


def coat_from_labels(labels: pa.Table, test_ratings: pa.Table, config: DataConfig, versions: dict[str, str] | None = None) -> PairData:
    """The protocol fed from recforge's tables: ``labels/debiased_labels`` (one row per training rating,
    with its grade and the table's propensity) and ``eval/random_exposure_ratings``.

    Rated pairs are the label rows, positives their ``observed`` (Y), and the per-pair propensities the
    table's (``propensity``), so the difference to :func:`load_coat` is exactly what the table holds.
    """
    user_ids = sorted({*labels["user_id"].to_pylist(), *test_ratings["user_id"].to_pylist()}, key=_id_key)
    item_ids = sorted({*labels["item_id"].to_pylist(), *test_ratings["item_id"].to_pylist()}, key=_id_key)
    u_index = {u: n for n, u in enumerate(user_ids)}
    i_index = {i: n for n, i in enumerate(item_ids)}
    train = np.zeros((len(user_ids), len(item_ids)), np.int64)
    propensity = np.ones(train.shape, np.float64)
    lu = np.array([u_index[u] for u in labels["user_id"].to_pylist()], np.int64)
    li = np.array([i_index[i] for i in labels["item_id"].to_pylist()], np.int64)
    # Every label row is a rated (exposed) pair; the table's Y says whether it is a positive. The rating
    # itself is not in the table, so positives get ``positive_rating`` and the others 1 (rated, not positive).
    observed = np.asarray(labels["observed"].to_numpy(zero_copy_only=False), np.int64) > 0
    train[lu, li] = np.where(observed, config.positive_rating, 1)
    propensity[lu, li] = labels["propensity"].to_numpy(zero_copy_only=False)
    test = np.zeros_like(train)
    tu = np.array([u_index[u] for u in test_ratings["user_id"].to_pylist()], np.int64)
    ti = np.array([i_index[i] for i in test_ratings["item_id"].to_pylist()], np.int64)
    test[tu, ti] = np.asarray(test_ratings["rating"].to_numpy(zero_copy_only=False), np.int64)
    # Pairs that are not training positives keep theta = 1: their Rel-MF weights do not use it.
    return coat_protocol(train, test, config, versions, propensity=propensity)


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)
