"""The engines: DuckDB (the embedded default) and Spark (scale-out), both returning Arrow."""

from __future__ import annotations

import abc
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from transforms.engine.dialect import Dialect, DuckDBDialect, EngineKind, SparkDialect


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings. DuckDB gets a memory limit and a spill directory so it degrades to disk."""

    kind: EngineKind = EngineKind.DUCKDB
    memory_limit: str = "4GB"
    threads: int = 2
    spill_dir: str | None = None
    spark_master: str = "local[2]"
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "2g"
    # Every query result comes back to the driver as Arrow; Spark's 1g default cap on collected results
    # aborts the job on large tables (10M-event interactions). "0" lifts the cap: the driver memory is the limit.
    spark_max_result_size: str = "0"


_SQL_TYPES = {pa.string(): "STRING", pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}


def sql_type(arrow_type: pa.DataType) -> str:
    """The SQL name (understood by DuckDB and Spark alike) of a scalar Arrow type."""
    if arrow_type not in _SQL_TYPES:
        raise ValueError(f"no SQL type for Arrow type {arrow_type}")
    return _SQL_TYPES[arrow_type]


class Engine(abc.ABC):
    """Runs SQL over named relations and returns Arrow tables."""

    dialect: Dialect

    @abc.abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> None: ...

    @abc.abstractmethod
    def register_parquet(self, name: str, paths: Sequence[Path], null_columns: Sequence[pa.Field] = ()) -> None:
        """Register Parquet files, read in place and by column name (a file without a column reads it as
        null); ``null_columns`` are added as typed nulls (columns that none of the files has)."""

    @abc.abstractmethod
    def register_text_lines(self, name: str, path: Path, source_name: str) -> None:
        """Register a text file (gzip allowed) as ``source_file, line_no, line``; blank lines skipped, still numbered."""

    @abc.abstractmethod
    def register_parquet_rows(self, name: str, path: Path, source_name: str) -> None:
        """Register a Parquet file with ``source_file`` and its 1-based row number ``line_no`` added."""

    @abc.abstractmethod
    def query(self, sql: str) -> pa.Table: ...

    def query_batches(self, sql: str, rows: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        """The result of ``sql`` as record batches of about ``rows`` rows, in the query's order.

        An engine that can stream its result does (DuckDB): memory then holds a batch, not the result.
        """
        yield from self.query(sql).to_batches(max_chunksize=rows)

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def parallel_workers(self) -> int:
        """How many independent queries are worth running at once from threads of this process
        (each through its own :meth:`worker`); 1 where the engine parallelises one query itself."""
        return 1

    def worker(self) -> Engine:
        """An engine for one more thread: the same data and settings, its own registered relations.

        Close it when the thread is done; the engine it came from stays open.
        """
        raise NotImplementedError(f"{type(self).__name__} runs one query at a time (parallel_workers is 1)")

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBEngine(Engine):
    dialect: Dialect = DuckDBDialect()

    def __init__(self, config: EngineConfig | None = None, connection: Any = None) -> None:
        import duckdb

        self.config = config or EngineConfig()
        self._con = connection if connection is not None else duckdb.connect(":memory:")
        spill = self.config.spill_dir or os.path.join(tempfile.gettempdir(), "recforge-duckdb-spill")
        self._con.execute(f"SET memory_limit = '{self.config.memory_limit}'")
        self._con.execute(f"SET threads = {self.config.threads}")
        self._con.execute(f"SET temp_directory = '{spill}'")
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET preserve_insertion_order = false")
        self._keep: dict[str, Any] = {}

    @property
    def parallel_workers(self) -> int:
        # Much of a small query (parsing one day's JSON lines, the Arrow scan) runs on one of DuckDB's
        # threads, so two such queries at once use two cores where one would use little more than one.
        return max(1, self.config.threads)

    def worker(self) -> DuckDBEngine:
        # A cursor is a second connection to the same in-memory database: relations registered on it
        # are its own, and its queries run beside this connection's.
        return DuckDBEngine(self.config, self._con.cursor())

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._keep[name] = table
        self._con.register(name, table)

    def register_parquet(self, name: str, paths: Sequence[Path], null_columns: Sequence[pa.Field] = ()) -> None:
        if not paths:
            raise ValueError(f"no Parquet files to register as {name}")
        files = ", ".join(f"'{p}'" for p in paths)
        nulls = "".join(f", CAST(NULL AS {sql_type(f.type)}) AS {f.name}" for f in null_columns)
        # By name: files written before a column was added (provenance) read it as null.
        self._con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT *{nulls} FROM read_parquet([{files}], union_by_name = true)')

    def register_text_lines(self, name: str, path: Path, source_name: str) -> None:
        from transforms.engine.sources import read_lines

        self.register_arrow(name, read_lines(path, source_name))

    def register_parquet_rows(self, name: str, path: Path, source_name: str) -> None:
        from transforms.engine.sources import read_parquet_rows

        self.register_arrow(name, read_parquet_rows(path, source_name))

    def query(self, sql: str) -> pa.Table:
        return self._con.sql(sql).to_arrow_table()

    def query_batches(self, sql: str, rows: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        yield from self._con.sql(sql).fetch_record_batch(rows)

    def close(self) -> None:
        self._con.close()


class SparkEngine(Engine):
    dialect: Dialect = SparkDialect()

    def __init__(self, config: EngineConfig | None = None) -> None:
        from pyspark.sql import SparkSession

        self.config = config or EngineConfig(kind=EngineKind.SPARK)
        self._spark = (
            SparkSession.builder.master(self.config.spark_master)
            .appName("recforge")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(self.config.spark_shuffle_partitions))
            .config("spark.driver.memory", self.config.spark_driver_memory)
            .config("spark.driver.maxResultSize", self.config.spark_max_result_size)
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        self._spark.sparkContext.setLogLevel("ERROR")

    @property
    def session(self) -> Any:
        return self._spark

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._spark.createDataFrame(table).createOrReplaceTempView(name)

    def register_parquet(self, name: str, paths: Sequence[Path], null_columns: Sequence[pa.Field] = ()) -> None:
        from pyspark.sql import functions as F

        if not paths:
            raise ValueError(f"no Parquet files to register as {name}")
        frame = self._spark.read.option("mergeSchema", "true").parquet(*[str(p) for p in paths])
        for f in null_columns:
            frame = frame.withColumn(f.name, F.lit(None).cast(sql_type(f.type)))
        frame.createOrReplaceTempView(name)

    def register_text_lines(self, name: str, path: Path, source_name: str) -> None:
        # Read by Spark itself (distributed, gzip-aware). monotonically_increasing_id grows in file order
        # across the ordered splits of one file, so ranking by it numbers the lines.
        self._numbered(self._spark.read.text(str(path)).withColumnRenamed("value", "line"), source_name)
        self._spark.sql(
            "SELECT source_file, line_no, line FROM recforge_numbered WHERE trim(line) <> ''"
        ).createOrReplaceTempView(name)

    def register_parquet_rows(self, name: str, path: Path, source_name: str) -> None:
        self._numbered(self._spark.read.parquet(str(path)), source_name)
        self._spark.table("recforge_numbered").createOrReplaceTempView(name)

    def _numbered(self, frame: Any, source_name: str) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql.window import Window

        order = Window.orderBy("recforge_mid")
        (
            frame.withColumn("recforge_mid", F.monotonically_increasing_id())
            .withColumn("line_no", F.row_number().over(order).cast("bigint"))
            .withColumn("source_file", F.lit(source_name))
            .drop("recforge_mid")
            .createOrReplaceTempView("recforge_numbered")
        )

    def query(self, sql: str) -> pa.Table:
        return self._spark.sql(sql).toArrow()

    def close(self) -> None:
        # The session is shared per JVM (getOrCreate); tests and runs reuse it, so only temp views go.
        for view in self._spark.catalog.listTables():
            if view.isTemporary:
                self._spark.catalog.dropTempView(view.name)


def open_engine(config: EngineConfig | None = None) -> Engine:
    """The engine named by ``config.kind`` (DuckDB by default)."""
    config = config or EngineConfig()
    if config.kind is EngineKind.SPARK:
        return SparkEngine(config)
    return DuckDBEngine(config)
