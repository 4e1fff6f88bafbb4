"""Two engines, one definition.

Relational transforms are written once as SQL against a :class:`Dialect`, whose macros render the few
constructs that DuckDB and Spark SQL spell differently (JSON extraction, safe timestamp parsing,
ordered list aggregation, list slicing, hashing). Everything else in the SQL is the common subset.
An :class:`Engine` registers inputs (Arrow tables or Parquet files) as named relations, runs a query
and returns Arrow; the DuckDB engine is the embedded default, the Spark engine scales out.

Known traps this avoids (DESIGN.md rule 5): sqlglot drops ``ORDER BY`` inside ``ARRAY_AGG`` when
writing Spark SQL, so ordered aggregation is a macro here, never a transpilation.
"""


from transforms.engine.dialect import Dialect, DuckDBDialect, EngineKind, SparkDialect
from transforms.engine.engines import DuckDBEngine, Engine, EngineConfig, SparkEngine, open_engine

__all__ = [
    "Dialect",
    "DuckDBDialect",
    "DuckDBEngine",
    "Engine",
    "EngineConfig",
    "EngineKind",
    "SparkDialect",
    "SparkEngine",
    "open_engine",
]
