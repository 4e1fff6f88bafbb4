"""Entry points: the ``recforge`` CLI and the one Dagster ``Definitions`` (``recforge.definitions``)."""
