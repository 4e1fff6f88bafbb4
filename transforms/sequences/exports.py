"""Exports for people who already have a trainer: HSTU / SASRec sequence files and RecBole atomic files.

Ids in every export are recforge's dense ids from the id map, shifted by +1 where the target format
reserves 0 for padding (HSTU, SASRec); RecBole reads ids as tokens and gets them unshifted.

* **HSTU** (Meta's generative-recommenders): one CSV line per user,
  ``index,user_id,sequence_item_ids,sequence_ratings,sequence_timestamps`` with the three sequences
  comma-joined inside quotes (that trainer's format, not ours), oldest first, timestamps in seconds.
  The trainer holds out the last item (test) and the one before (validation) itself, so the export
  of a leave-one-out split is each user's FULL ordered history of interactions (:func:`full_histories`,
  never truncated to ``max_len``). ``sequence_ratings`` carries the ratings (0 for an interaction
  without a rating event).
* **SASRec** (Kang & McAuley's reference code): ``user item`` per line, grouped by user, in time order.
* **RecBole**: atomic files ``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter``
  (its ``benchmark_filename`` pre-split mode) with typed headers, and ``<name>.item`` when the
  catalog is given.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from transforms.engine import Engine
from transforms.sequences.inputs import PreparedInputs, _base_cte
from transforms.sequences.splits import EVENT_FIELDS

HSTU_HEADER = ["index", "user_id", "sequence_item_ids", "sequence_ratings", "sequence_timestamps"]
RECBOLE_INTER_HEADER = ["user_id:token", "item_id:token", "timestamp:float", "weight:float"]
RECBOLE_ITEM_HEADER = ["item_id:token", "title:token_seq", "categories:token_seq", "brand:token"]
ID_SHIFT = 1


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    files: tuple[Path, ...]
    users: int
    events: int


def full_histories(engine: Engine, prep: PreparedInputs, min_len: int = 3) -> list[dict[str, object]]:
    """Each user's full ordered history of interactions (users with ``min_len`` or more; leave-one-out
    needs 3): ``user_idx, item_ids, timestamps, weights, ratings`` (rating 0 where an interaction has
    no rating event). Nothing is truncated: the builders' ``max_len`` does not apply."""
    d = engine.dialect
    fields = dict(EVENT_FIELDS, rating="COALESCE(rating, 0.0)")
    table = engine.query(f"""
WITH {_base_cte(d, prep)},
grouped AS (SELECT user_idx, {d.ordered_structs(fields, "pos")} AS evs FROM base GROUP BY user_idx HAVING COUNT(*) >= {min_len})
SELECT user_idx, {d.list_field("evs", "item")} AS item_ids, {d.list_field("evs", "ts")} AS timestamps,
       {d.list_field("evs", "w")} AS weights, {d.list_field("evs", "rating")} AS ratings
FROM grouped ORDER BY user_idx""")
    return table.to_pylist()


def full_sequences_from_leave_one_out(test_rows: Iterable[pa.RecordBatch | pa.Table]) -> Iterable[dict[str, object]]:
    """Each user's ordered history from the test rows of a leave-one-out split (history + test target).

    The test history already ends with the validation target (event ``n-1``), so history + target is
    events ``1..n`` (the most recent ``max_len + 1`` when the split truncated histories).
    """
    for batch in test_rows:
        for row in batch.to_pylist():
            if len(row["target_item_ids"]) != 1:
                raise ValueError(
                    f"user {row['user_idx']}: {len(row['target_item_ids'])} test targets; the HSTU export needs a leave-one-out split"
                )
            yield {
                "user_idx": row["user_idx"],
                "item_ids": row["item_ids"] + row["target_item_ids"],
                "timestamps": row["timestamps"] + row["target_timestamps"],
                "weights": row["weights"] + row["target_weights"],
            }


def write_hstu(sequences: Iterable[dict[str, object]], out: Path) -> ExportReport:
    """Write HSTU's ``sasrec_format.csv``-style file (one line per user) from full sequences."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    users = events = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(HSTU_HEADER)
        for seq in sorted(sequences, key=lambda s: int(s["user_idx"])):  # type: ignore[call-overload]
            items = [int(i) + ID_SHIFT for i in seq["item_ids"]]  # type: ignore[attr-defined]
            ratings = [float(r) for r in seq.get("ratings") or [0.0] * len(items)]  # type: ignore[attr-defined]
            seconds = [int(t) // 1000 for t in seq["timestamps"]]  # type: ignore[attr-defined]
            writer.writerow(
                [users, int(seq["user_idx"]) + ID_SHIFT, _join(items), _join(f"{r:g}" for r in ratings), _join(seconds)]  # type: ignore[call-overload]
            )
            users += 1
            events += len(items)
    tmp.replace(out)
    return ExportReport((out,), users, events)


def write_sasrec(sequences: Iterable[dict[str, object]], out: Path) -> ExportReport:
    """Write SASRec's ``user item`` lines (1-based ids), grouped by user, oldest first."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    users = events = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w") as handle:
        for seq in sorted(sequences, key=lambda s: int(s["user_idx"])):  # type: ignore[call-overload]
            user = int(seq["user_idx"]) + ID_SHIFT  # type: ignore[call-overload]
            handle.writelines(f"{user} {int(i) + ID_SHIFT}\n" for i in seq["item_ids"])  # type: ignore[attr-defined]
            users += 1
            events += len(seq["item_ids"])  # type: ignore[arg-type]
    tmp.replace(out)
    return ExportReport((out,), users, events)


def write_recbole(
    splits: dict[str, Iterable[pa.RecordBatch | pa.Table]],
    out_dir: Path,
    name: str,
    items: pa.Table | None = None,
    id_maps: pa.Table | None = None,
) -> ExportReport:
    """Write RecBole atomic files for a split: training histories, validation and test targets.

    Args:
        splits: ``train``, ``valid``, ``test`` -> batches of split rows (``transforms.sequences.SPLIT_ROWS_SCHEMA``).
        out_dir: Folder (RecBole's ``data_path/<name>``).
        name: Dataset name (file prefix).
        items: ``raw_items`` rows, to write ``<name>.item`` (needs ``id_maps``).
        id_maps: ``core_id_maps`` rows.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    users: set[int] = set()
    events = 0
    for split in ("train", "valid", "test"):
        path = out_dir / f"{name}.{split}.inter"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(RECBOLE_INTER_HEADER)
            for batch in splits.get(split, []):
                for row in batch.to_pylist():
                    users.add(row["user_idx"])
                    if split == "train":
                        cols = (row["item_ids"], row["timestamps"], row["weights"])
                    else:
                        cols = (row["target_item_ids"], row["target_timestamps"], row["target_weights"])
                    for item, ts, weight in zip(*cols, strict=True):
                        writer.writerow([row["user_idx"], item, f"{ts / 1000:.3f}", f"{weight:g}"])
                        events += 1
        files.append(path)
    if items is not None:
        if id_maps is None:
            raise ValueError("writing the .item file needs the id map")
        idx = {
            e: i for e, i, ent in zip(id_maps["external_id"].to_pylist(), id_maps["idx"].to_pylist(), id_maps["entity"].to_pylist(), strict=True)
            if ent == "item"
        }
        path = out_dir / f"{name}.item"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(RECBOLE_ITEM_HEADER)
            rows = sorted((idx[r["item_id"]], r) for r in items.to_pylist() if r["item_id"] in idx)
            for item_idx, r in rows:
                cats = " ".join(c.replace(" ", "_") for c in (r.get("categories") or []))
                writer.writerow([item_idx, _clean(r.get("title")), cats, _clean(r.get("brand"))])
        files.append(path)
    return ExportReport(tuple(files), len(users), events)


def _join(values: Iterable[object]) -> str:
    return ",".join(str(v) for v in values)


def _clean(value: object) -> str:
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")
