"""Iterative k-core filtering of (user, item) pairs."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from transforms.engine import Engine


@dataclass(frozen=True)
class KCoreResult:
    """Users and items that survive iterative k-core filtering, and how many rounds it took."""

    users: pa.Table  # user_idx
    items: pa.Table  # item_idx
    iterations: int
    pairs: int  # distinct (user, item) pairs left


def k_core(engine: Engine, pairs: pa.Table, k: int, max_iterations: int = 1000) -> KCoreResult:
    """Iterate to the k-core: every kept user has ``>= k`` distinct kept items and vice versa.

    One round drops, at the same time, every user and every item with fewer than ``k`` distinct
    partners among the pairs still kept. Dropping a user can push an item below ``k`` and the other
    way round, so rounds repeat until one removes nothing: that fixed point is the k-core (unique,
    whatever the order of removals).

    Args:
        engine: DuckDB or Spark.
        pairs: ``user_idx, item_idx`` rows (duplicates allowed).
        k: The minimum degree.
        max_iterations: A guard; the loop stops long before it on real data.

    Raises:
        RuntimeError: No fixed point within ``max_iterations`` rounds (cannot happen: each round
            either removes a pair or stops).
    """
    engine.register_arrow("kcore_input", pairs.select(["user_idx", "item_idx"]))
    current = engine.query("SELECT DISTINCT user_idx, item_idx FROM kcore_input")
    for iteration in range(1, max_iterations + 1):
        engine.register_arrow("kcore_pairs", current)
        kept = engine.query(
            f"""
SELECT p.user_idx, p.item_idx FROM kcore_pairs p
JOIN (SELECT user_idx FROM kcore_pairs GROUP BY user_idx HAVING COUNT(*) >= {k}) u ON u.user_idx = p.user_idx
JOIN (SELECT item_idx FROM kcore_pairs GROUP BY item_idx HAVING COUNT(*) >= {k}) i ON i.item_idx = p.item_idx
"""
        )
        if kept.num_rows == current.num_rows:
            users = pa.table({"user_idx": pc.unique(kept["user_idx"]).cast(pa.int64())})
            items = pa.table({"item_idx": pc.unique(kept["item_idx"]).cast(pa.int64())})
            return KCoreResult(users.sort_by("user_idx"), items.sort_by("item_idx"), iteration, kept.num_rows)
        current = kept
    raise RuntimeError(f"k-core did not reach a fixed point in {max_iterations} rounds")
