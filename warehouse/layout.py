"""File names shared by the store, the catalog and shard sets (one place, so they cannot drift)."""

PART_FILE = "part.parquet"  # one partition of a table
MANIFEST_FILE = "_partitions.json"  # row count and content hash per partition of a table
CURRENT_LINK = "current"  # a versioned file set's pointer to its current version
CATALOG_FILE = "catalog.duckdb"  # the DuckDB catalog in the data root
