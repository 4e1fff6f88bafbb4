"""Pure transforms: tables in, tables out. No Dagster, no I/O beyond what they are handed."""
