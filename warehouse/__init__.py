"""The storage layer: table contracts, atomic partitioned Parquet writes and the DuckDB catalog."""
