"""Item text from reviews alone, on the real Amazon 2014 Musical Instruments 5-core file (reviews, no metadata).

``recforge ingest amazon`` then ``recforge build --split leave-one-out`` must describe every item with a written
review before the cut-off, less each user's held-out (validation and test) interactions, and give those items
text-based semantic IDs. The expected counts come from DuckDB over the source file, applying the rule
independently of the enrichment code. Skipped when ``../shared/datasets`` is absent.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recforge.cli import main
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.datasets, pytest.mark.slow]

FILE = "amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"

# Per user with at least three reviews, t = the time of the second-to-last: reviews at or after t, and reviews of
# an item the user reviewed from t on, are held out. Kept: written reviews before the cut-off and not held out.
EXPECTED = """
WITH r AS (SELECT reviewerID AS u, asin AS i, to_timestamp(unixReviewTime) AS t, reviewText, summary FROM read_json_auto('{path}')),
ranked AS (SELECT *, row_number() OVER (PARTITION BY u ORDER BY t DESC) AS rk, count(*) OVER (PARTITION BY u) AS n FROM r),
valid AS (SELECT u, t AS t_valid FROM ranked WHERE rk = 2 AND n >= 3),
held AS (SELECT DISTINCT r.u, r.i FROM r JOIN valid USING (u) WHERE r.t >= valid.t_valid),
kept AS (
    SELECT r.* FROM r LEFT JOIN valid USING (u)
    WHERE r.t < TIMESTAMP '{cutoff}' AND (valid.t_valid IS NULL OR r.t < valid.t_valid)
      AND (r.u, r.i) NOT IN (SELECT (u, i) FROM held)
      AND (coalesce(reviewText, '') <> '' OR coalesce(summary, '') <> '')
)
SELECT count(DISTINCT i), count(DISTINCT u) FROM kept
"""


def test_reviews_without_metadata_describe_items_and_leave_out_held_out_reviews(
    shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("RECFORGE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / ".dagster"))
    assert main(["ingest", "amazon", "--path", str(shared_datasets / FILE.split("/")[0])]) == 0
    assert main(["build", "--select", "core,enrichment,semantic_ids", "--split", "leave-one-out"]) == 0
    with connect_catalog(home) as con:
        described = con.execute("SELECT count(*) FROM enrichment_item_descriptions").fetchone()[0]
        profiled = con.execute("SELECT count(*) FROM enrichment_user_profiles").fetchone()[0]
        sources = dict(con.execute("SELECT embedding_source, count(*) FROM semantic_ids_item_semantic_ids GROUP BY 1").fetchall())
        cutoff = con.execute("SELECT json_extract_string(config, '$.train_end') FROM semantic_ids_codebooks").fetchone()[0]
    with duckdb.connect() as con:
        items, users = con.execute(EXPECTED.format(path=shared_datasets / FILE, cutoff=cutoff[:10])).fetchone()
    assert cutoff.endswith("T00:00:00+00:00")  # a day boundary, so the date alone is the cut-off
    assert (described, profiled) == (items, users)
    assert sources["text"] == described and sum(sources.values()) == 900  # every item gets an ID; those with text from it
