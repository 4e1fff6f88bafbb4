"""Partitions, defined once."""

import dagster as dg

# Public datasets reach back to the mid-1990s (MovieLens ratings start in 1995), so the daily
# partitions do too; nightly runs only ever touch the newest day.
EARLIEST_EVENT_DATE = "1995-01-01"

daily_event_partitions = dg.DailyPartitionsDefinition(start_date=EARLIEST_EVENT_DATE)
