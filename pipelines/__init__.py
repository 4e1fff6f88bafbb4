"""Orchestration: Dagster wiring, the ingestion runner, the CLI and the Beam pipelines."""
