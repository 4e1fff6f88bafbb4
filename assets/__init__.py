"""Dagster asset definitions, grouped by layer. Thin: each reads, calls transforms, writes, reports."""
