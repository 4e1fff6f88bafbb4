"""Data-quality checks backed by great-expectations.

Each contract table is validated against a suite built from its contract: the exact column list,
non-null keys, key uniqueness and value ranges. Great-expectations evaluates pandas batches; to keep
validation cheaper than the pipeline on large partitions (a trap LANDSCAPE.md records), it runs on a
deterministic sample above ``sample_rows``, and the result says so. Key uniqueness, which a sample
cannot prove, is always counted exactly with pyarrow on the whole table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.contracts import TableContract

DEFAULT_SAMPLE_ROWS = 200_000
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class RangeRule:
    column: str
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """One expectation's verdict."""

    name: str
    success: bool
    unexpected_count: int = 0
    examples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    validated_rows: int
    outcomes: list[CheckOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def by_kind(self, prefix: str) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.name.startswith(prefix)]


def validate_table(
    table: pa.Table,
    contract: TableContract,
    ranges: tuple[RangeRule, ...] = (),
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
) -> ValidationReport:
    """Validate ``table`` against its contract with great-expectations.

    Args:
        table: The stored table (or one partition).
        contract: Its contract (columns, keys, not-null columns).
        ranges: Value ranges to expect.
        sample_rows: Above this many rows the great-expectations suite sees a deterministic sample.
        seed: Sampling seed.
    """
    outcomes = [_exact_key_uniqueness(table, contract)]
    sample = _sample(table, sample_rows, seed)
    outcomes += _run_suite(sample, contract, ranges)
    return ValidationReport(rows=table.num_rows, validated_rows=sample.num_rows, outcomes=outcomes)


def _sample(table: pa.Table, sample_rows: int, seed: int) -> pa.Table:
    if table.num_rows <= sample_rows:
        return table
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(table.num_rows, size=sample_rows, replace=False))
    return table.take(pa.array(picked))


def _exact_key_uniqueness(table: pa.Table, contract: TableContract) -> CheckOutcome:
    name = f"unique:{','.join(contract.key)}"
    if not contract.key or table.num_rows == 0:
        return CheckOutcome(name, True)
    counts = table.select(list(contract.key)).group_by(list(contract.key)).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    examples = repeated.slice(0, MAX_EXAMPLES).drop_columns(["count_all"]).to_pylist()
    extra = int(pc.sum(repeated["count_all"]).as_py() or 0) - repeated.num_rows
    return CheckOutcome(name, repeated.num_rows == 0, extra, examples)


def _run_suite(sample: pa.Table, contract: TableContract, ranges: tuple[RangeRule, ...]) -> list[CheckOutcome]:
    # Imported here: great-expectations takes seconds to import and must not slow module import.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    # Its ephemeral context logs a line per validation at INFO; it sets its loggers up on import.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    batch = (
        context.data_sources.add_pandas("recforge")
        .add_dataframe_asset(contract.view_name)
        .add_batch_definition_whole_dataframe("sample")
        .get_batch(batch_parameters={"dataframe": _to_pandas(sample)})
    )
    named: list[tuple[str, Any]] = [
        ("schema", gxe.ExpectTableColumnsToMatchOrderedList(column_list=contract.schema.names))
    ]
    named += [(f"not_null:{c}", gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in contract.not_null]
    named += [
        (
            f"range:{r.column}",
            gxe.ExpectColumnValuesToBeBetween(column=r.column, min_value=r.min_value, max_value=r.max_value),
        )
        for r in ranges
    ]
    suite = context.suites.add(gx.ExpectationSuite(name=f"{contract.view_name}_suite"))
    for _, expectation in named:
        suite.add_expectation(expectation)
    # Results do not come back in the order the expectations were added: match them by identity.
    by_identity = {_identity(r.expectation_config): r for r in batch.validate(suite).results}
    outcomes = []
    for name, expectation in named:
        result = by_identity[_identity(expectation.configuration)]
        details = result.result or {}
        outcomes.append(
            CheckOutcome(
                name,
                bool(result.success),
                int(details.get("unexpected_count") or 0),
                [_plain(v) for v in (details.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]],
            )
        )
    return outcomes


def _identity(config: Any) -> tuple[str, str]:
    kwargs = config.kwargs
    return config.type, str(kwargs.get("column") or kwargs.get("column_list"))


def _to_pandas(table: pa.Table) -> Any:
    # List columns become Python lists; great-expectations only inspects scalar columns here.
    return table.to_pandas(types_mapper=None, timestamp_as_object=False)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
