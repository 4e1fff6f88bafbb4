"""The enrichment Beam pipelines: skip cached, batch, generate or embed, checkpoint, fold, resume."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.enrichment import (
    BeamSettings,
    EmbeddingRun,
    FailureShareExceeded,
    GenerateEnrichment,
    GenerationRun,
    make_pipeline,
    make_runner,
    run_embedding,
    run_generation,
    shared_embedder,
)
from tests.fakes.openai_server import Behavior, ServerScript, serve
from tests.transforms.enrichment.data import CUTOFF, events, items, reviews
from transforms.enrichment import EmbedderConfig, ExtractiveConfig, OpenAIChatConfig
from transforms.enrichment.inputs import build_item_tasks, build_user_tasks
from transforms.enrichment.records import OUTPUT_CONTRACTS, texts_to_embed
from transforms.enrichment.types import (
    EntityKind,
    GenerationOutcome,
    GenerationTask,
    GeneratorKind,
    cache_key,
)
from warehouse.contracts import (
    ENRICHMENT_ITEM_DESCRIPTION_FAILURES,
    ENRICHMENT_ITEM_DESCRIPTIONS,
    ENRICHMENT_ITEM_EMBEDDINGS,
    ENRICHMENT_USER_PROFILES,
    RAW_EVENTS,
    RAW_ITEMS,
    RAW_REVIEWS,
)
from warehouse.store import Warehouse

pytestmark = pytest.mark.beam

FIRST = dt.datetime(2026, 1, 10, 3, tzinfo=dt.UTC)
SECOND = dt.datetime(2026, 1, 11, 3, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _offline_and_no_prism(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every pipeline here must run without the Prism runner and without reaching past loopback.

    Beam's DirectRunner swallows a Prism failure and falls back, so attempts are recorded and
    checked after the test rather than only raised.
    """
    from apache_beam.runners.portability import prism_runner

    attempts: list[str] = []

    def refuse(*_: Any, **__: Any) -> None:
        attempts.append("prism")
        raise AssertionError("the Prism runner was started")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    monkeypatch.setattr(prism_runner.PrismJobServer, "__init__", refuse)
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access to {address} during an offline test")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield attempts
    assert attempts == [], "a pipeline tried to start the Prism runner (it downloads a binary)"


def _item_tasks() -> list[GenerationTask]:
    return build_item_tasks(items(), reviews(), CUTOFF)  # i1..i4


def _http(base_url: str) -> OpenAIChatConfig:
    return OpenAIChatConfig(base_url=base_url, model="test-model", api_key_env=None, max_retries=2,
                            backoff_initial_s=0.01, backoff_max_s=0.02, timeout_s=2.0, requests_per_second=0)


class _Tables:
    """A sink that writes to a real warehouse, like the assets do."""

    def __init__(self, root: Path) -> None:
        self.store = Warehouse(root)
        self.calls = 0

    def __call__(self, outputs: pa.Table, failures: pa.Table) -> None:
        self.calls += 1
        self.store.write(ENRICHMENT_ITEM_DESCRIPTIONS, outputs)
        self.store.write(ENRICHMENT_ITEM_DESCRIPTION_FAILURES, failures)

    def outputs(self) -> pa.Table:
        return self.store.read(ENRICHMENT_ITEM_DESCRIPTIONS)


def _run(tasks: list[GenerationTask], sink: _Tables, generator: Any, at: dt.datetime, work: Path, **kw: Any):  # type: ignore[no-untyped-def]
    run = GenerationRun(EntityKind.ITEM, generator, work, at, beam=BeamSettings(batch_size=2), **kw)
    return run_generation(tasks, sink.outputs(), run, sink)


def test_prism_is_refused_and_direct_runner_is_the_in_process_engine() -> None:
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    assert isinstance(make_runner("DirectRunner"), FnApiRunner)
    for name in ("PrismRunner", "prism"):
        with pytest.raises(ValueError, match="Prism"):
            make_runner(name)
    with pytest.raises(ValueError, match="Prism"):
        make_pipeline(BeamSettings(pipeline_args=("--runner=PrismRunner",)))


def test_the_prism_guard_notices_beams_own_direct_runner(_offline_and_no_prism: list[str]) -> None:
    """Guard self-check: Beam's own "DirectRunner" name tries Prism first, and the fixture sees it."""
    with beam.Pipeline(runner="DirectRunner") as p:
        _ = p | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
    assert _offline_and_no_prism == ["prism"]
    _offline_and_no_prism.clear()  # expected here; every other test must leave it empty


def test_generate_transform_skips_cached_and_tags_failures(tmp_path: Path) -> None:
    tasks = _item_tasks()
    keys = {t.entity_id: cache_key(t.input_hash, "item-description@1", "test-model") for t in tasks}
    requests = [{"entity_id": t.entity_id, "input_hash": t.input_hash, "cache_key": keys[t.entity_id],
                 "payload": __import__("json").dumps(t.payload)} for t in tasks]
    with serve(ServerScript(per_entity={"i3": [Behavior.REFUSAL] * 5})) as server:
        with BeamTestPipeline(runner=make_runner("DirectRunner")) as p:
            cached = p | "Cached" >> beam.Create([(keys["i1"], True)])
            result = p | beam.Create(requests) | GenerateEnrichment(
                EntityKind.ITEM, _http(server.base_url), str(tmp_path / "ckpt"), FIRST, cached, batch_size=2
            )
            assert_that(result.outputs | "OutIds" >> beam.Map(lambda r: r["item_id"]), equal_to(["i2", "i4"]), label="outputs")
            assert_that(result.failures | "FailIds" >> beam.Map(lambda r: (r["item_id"], r["failure_kind"])),
                        equal_to([("i3", "refusal")]), label="failures")
        assert server.count(entity_id="i1") == 0  # cached: never asked
    assert len(list((tmp_path / "ckpt").glob("*.out.parquet"))) == 2  # two batches, checkpointed


def test_second_run_with_nothing_changed_calls_no_model_and_writes_identical_bytes(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    with serve() as server:
        first = _run(_item_tasks(), sink, _http(server.base_url), FIRST, tmp_path / "work")
        assert first.stats.generated == 4 and first.stats.model_calls == 4 and server.count() == 4
        written = sink.store.stored_stats(ENRICHMENT_ITEM_DESCRIPTIONS)
        second = _run(_item_tasks(), sink, _http(server.base_url), SECOND, tmp_path / "work")
        assert server.count() == 4  # the cache test: not one request more
    assert second.stats.model_calls == 0 and second.stats.cached == 4 and second.stats.generated == 0
    assert sink.store.stored_stats(ENRICHMENT_ITEM_DESCRIPTIONS) == written  # same rows, same bytes
    table = sink.outputs()
    assert set(table["generated_at"].to_pylist()) == {FIRST}  # the original generation time is kept
    assert set(table["generator_kind"].to_pylist()) == {GeneratorKind.OPENAI_HTTP.value}
    assert set(table["prompt_version"].to_pylist()) == {"item-description@1"}
    assert first.stats.prompt_tokens > 0 and second.stats.prompt_tokens == 0
    assert not (tmp_path / "work").exists()  # checkpoints are folded and cleared


def test_only_changed_items_are_regenerated(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    _run(_item_tasks(), sink, ExtractiveConfig(), FIRST, tmp_path / "work")
    changed = items().to_pylist()
    changed[2]["title"] = "Chef Pan Pro"  # i3 changed in the catalog; i4 removed from it
    catalog = pa.Table.from_pylist(changed[:3], schema=items().schema)
    result = _run(build_item_tasks(catalog, reviews(), CUTOFF), sink, ExtractiveConfig(), SECOND, tmp_path / "work")
    assert result.stats.model_calls == 1 and result.stats.cached == 2
    rows = {r["item_id"]: r for r in sink.outputs().to_pylist()}
    assert sorted(rows) == ["i1", "i2", "i3"]
    assert rows["i3"]["generated_at"] == SECOND and "Chef Pan Pro" in rows["i3"]["description"]
    assert rows["i1"]["generated_at"] == FIRST and rows["i1"]["model"] == "extractive@2"


def test_failures_are_recorded_and_the_run_succeeds_under_the_allowed_share(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    script = ServerScript(per_entity={"i2": [Behavior.SERVER_ERROR] * 3})  # i2 fails all 3 attempts once
    with serve(script) as server:
        result = _run(_item_tasks(), sink, _http(server.base_url), FIRST, tmp_path / "work", max_failure_share=0.3)
        assert result.stats.failed == 1 and result.stats.generated == 3
        failures = sink.store.read(ENRICHMENT_ITEM_DESCRIPTION_FAILURES).to_pylist()
        assert [(f["item_id"], f["failure_kind"], f["attempts"]) for f in failures] == [("i2", "http_status", 3)]
        assert "HTTP 500" in failures[0]["error"]
        before = server.count()
        retry = _run(_item_tasks(), sink, _http(server.base_url), SECOND, tmp_path / "work")
        assert server.count() - before == 1 and server.count(entity_id="i2") == 4  # only the failed one is retried
    assert retry.stats.generated == 1 and sink.store.read(ENRICHMENT_ITEM_DESCRIPTION_FAILURES).num_rows == 0
    assert sink.outputs()["item_id"].to_pylist() == ["i1", "i2", "i3", "i4"]


def test_too_many_failures_fail_the_run_after_keeping_what_succeeded(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    script = ServerScript(per_entity={"i2": [Behavior.OFF_SCHEMA] * 9, "i3": [Behavior.MALFORMED_BODY] * 9})
    with serve(script) as server, pytest.raises(FailureShareExceeded, match="2 of 4 item tasks failed"):
        _run(_item_tasks(), sink, _http(server.base_url), FIRST, tmp_path / "work", max_failure_share=0.25)
    assert sink.calls == 1 and sink.outputs()["item_id"].to_pylist() == ["i1", "i4"]
    failures = sink.store.read(ENRICHMENT_ITEM_DESCRIPTION_FAILURES).to_pylist()
    assert [(f["item_id"], f["failure_kind"]) for f in failures] == [("i2", "invalid_output"), ("i3", "malformed_response")]


class _Crash(RuntimeError):
    pass


@dataclass(frozen=True)
class CrashingConfig:
    """An HTTP generator whose process 'dies' on its n-th batch (a kill, an OOM, a lost node)."""

    inner: OpenAIChatConfig
    crash_on_batch: int
    kind: ClassVar[GeneratorKind] = GeneratorKind.OPENAI_HTTP

    @property
    def stored_model(self) -> str:
        return self.inner.model

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def build(self) -> Any:
        inner, crash_on = self.inner.build(), self.crash_on_batch

        class Crashing:
            kind, model, calls = inner.kind, inner.model, 0

            def generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
                self.calls += 1
                if self.calls == crash_on:
                    raise _Crash("worker died")
                return inner.generate(tasks)

            def close(self) -> None:
                return None

        return Crashing()


def test_a_run_that_dies_loses_nothing_and_resumes(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    with serve() as server:
        with pytest.raises(Exception, match="worker died"):
            _run(_item_tasks(), sink, CrashingConfig(_http(server.base_url), crash_on_batch=2), FIRST, tmp_path / "work")
        assert sink.calls == 0 and server.count() == 2  # one batch of 2 finished before the crash
        assert len(list((tmp_path / "work" / "checkpoints").glob("*.out.parquet"))) == 1
        done_before = {r.entity_id for r in server.requests}
        resumed = _run(_item_tasks(), sink, _http(server.base_url), SECOND, tmp_path / "work")
        assert server.count() == 4 and {r.entity_id for r in server.requests[2:]}.isdisjoint(done_before)
    assert resumed.stats.resumed == 2 and resumed.stats.generated == 2
    rows = {r["item_id"]: r["generated_at"] for r in sink.outputs().to_pylist()}
    assert sorted(rows) == ["i1", "i2", "i3", "i4"]
    assert {rows[i] for i in done_before} == {FIRST}  # the rows from before the crash are kept as they were


def test_user_profiles_through_the_pipeline(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "home")
    tasks = build_user_tasks(events(), reviews(), items(), CUTOFF)
    run = GenerationRun(EntityKind.USER, ExtractiveConfig(), tmp_path / "work", FIRST)
    result = run_generation(tasks, OUTPUT_CONTRACTS[EntityKind.USER].schema.empty_table(), run,
                            lambda out, _: store.write(ENRICHMENT_USER_PROFILES, out))
    table = store.read(ENRICHMENT_USER_PROFILES)
    assert table["user_id"].to_pylist() == ["u1", "u2"] and result.stats.generated == 2
    assert set(table["cutoff"].to_pylist()) == {CUTOFF}


def test_embeddings_through_the_pipeline_match_raw_encode_and_are_cached(tmp_path: Path) -> None:
    config = EmbedderConfig()
    model = shared_embedder(config)
    generated = pa.table({"item_id": ["i1", "i2", "i3"], "description": ["a green tent", "a gas stove", "a frying pan"]})
    wanted = texts_to_embed(EntityKind.ITEM, generated, "description")
    store = Warehouse(tmp_path / "home")

    def sink(table: pa.Table) -> None:
        store.write(ENRICHMENT_ITEM_EMBEDDINGS, table)

    run = EmbeddingRun(EntityKind.ITEM, config, tmp_path / "work", BeamSettings(batch_size=2))
    first = run_embedding(wanted, store.read(ENRICHMENT_ITEM_EMBEDDINGS), run, sink)
    table = store.read(ENRICHMENT_ITEM_EMBEDDINGS)
    assert table.schema == ENRICHMENT_ITEM_EMBEDDINGS.schema and first.stats.model_calls == 3
    got = np.stack(table["embedding"].to_numpy(zero_copy_only=False))
    assert np.allclose(got, model.encode(["a green tent", "a gas stove", "a frying pan"]), atol=1e-5)
    assert set(table["model"].to_pylist()) == {"sentence-transformers/all-MiniLM-L6-v2"}

    generated = pa.table({"item_id": ["i1", "i2", "i3"], "description": ["a green tent", "a gas stove", "a steel wok"]})
    second = run_embedding(texts_to_embed(EntityKind.ITEM, generated, "description"), table, run, sink)
    assert second.stats.model_calls == 1 and second.stats.cached == 2  # only the changed text
    third = run_embedding(texts_to_embed(EntityKind.ITEM, generated, "description"), store.read(ENRICHMENT_ITEM_EMBEDDINGS), run, sink)
    assert third.stats.model_calls == 0


def test_assets_materialize_and_rematerialize_without_model_calls(tmp_path: Path) -> None:
    import dagster as dg

    from assets import enrichment as assets
    from assets.resources import CutoffsResource, EngineResource, WarehouseResource
    from assets.resources_enrichment import EmbedderResource, ExtractiveGeneratorResource

    store = Warehouse(tmp_path / "home")
    store.write(RAW_ITEMS, items())
    for contract, table in ((RAW_REVIEWS, reviews()), (RAW_EVENTS, events())):
        for day in sorted({t.date() for t in table["ts"].to_pylist()}):
            store.write(contract, table.filter(pa.array([t.date() == day for t in table["ts"].to_pylist()])), day)
    selection = [assets.item_descriptions, assets.user_profiles, assets.item_embeddings, assets.user_embeddings]
    resources = {
        "warehouse": WarehouseResource(home=str(tmp_path / "home")),
        "engine": EngineResource(memory_limit="1GB"), "enrichment_generator": ExtractiveGeneratorResource(),
        "enrichment_embedder": EmbedderResource(),
    }
    def materialize(train_end: dt.datetime = CUTOFF) -> dict[str, dict[str, Any]]:
        cutoffs = CutoffsResource(train_end=train_end.isoformat(), valid_end=train_end.isoformat())
        result = dg.materialize(selection, resources={**resources, "cutoffs": cutoffs}, raise_on_error=True)
        assert result.success
        checks = [e for e in result.get_asset_check_evaluations()]
        assert checks and all(c.passed for c in checks)
        return {
            m.materialization.asset_key.to_user_string(): {k: v.value for k, v in m.materialization.metadata.items()}
            for m in result.get_asset_materialization_events()
        }

    first = materialize()
    assert first["enrichment/item_descriptions"]["generated"] == 4 and first["enrichment/user_profiles"]["generated"] == 2
    assert first["enrichment/item_embeddings"]["model_calls"] == 4 and first["enrichment/user_embeddings"]["dim"] == 384
    hashes = {c.view_name: store.stored_stats(c) for c in (ENRICHMENT_ITEM_DESCRIPTIONS, ENRICHMENT_USER_PROFILES, ENRICHMENT_ITEM_EMBEDDINGS)}
    second = materialize()
    assert all(second[k]["model_calls"] == 0 for k in second if "failures" not in k)
    assert hashes == {c.view_name: store.stored_stats(c) for c in (ENRICHMENT_ITEM_DESCRIPTIONS, ENRICHMENT_USER_PROFILES, ENRICHMENT_ITEM_EMBEDDINGS)}
    assert store.read(ENRICHMENT_USER_PROFILES)["user_id"].to_pylist() == ["u1", "u2"]

    # The next night's cut-off: alice and carol acted in between, bob did not, so only bob is kept.
    moved = CUTOFF + dt.timedelta(days=3)
    third = materialize(moved)
    assert third["enrichment/user_profiles"]["generated"] == 2 and third["enrichment/user_profiles"]["cached"] == 1
    cutoffs = {r["user_id"]: r["cutoff"] for r in store.read(ENRICHMENT_USER_PROFILES).to_pylist()}
    assert cutoffs == {"u1": moved, "u2": CUTOFF, "u3": moved}


# --- faults: authentication, failed regeneration, corrupt cache, concurrent runs, cache key ------------------


def _changed_catalog() -> list[GenerationTask]:
    """Every item's title changed since the first run: each must be regenerated."""
    rows = items().to_pylist()
    for r in rows:
        r["title"] = f"{r['title']} Mk II"
    return build_item_tasks(pa.Table.from_pylist(rows, schema=items().schema), reviews(), CUTOFF)


def test_an_authentication_refusal_stops_the_run_and_keeps_the_stored_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint answers 401 and echoes the key: the run stops at once, says why, and writes nothing."""
    from transforms.enrichment import AuthenticationError

    sink = _Tables(tmp_path / "home")
    _run(_item_tasks(), sink, ExtractiveConfig(), FIRST, tmp_path / "work")
    written = sink.store.stored_stats(ENRICHMENT_ITEM_DESCRIPTIONS)
    key = "sk-live-9f8e7d6c5b4a39281706"
    monkeypatch.setenv("RECFORGE_TEST_KEY", key)
    with serve(ServerScript(api_key="sk-other", echo_key=True)) as server:
        config = OpenAIChatConfig(base_url=server.base_url, model="m", api_key_env="RECFORGE_TEST_KEY", max_concurrency=1,
                                  requests_per_second=0)
        with pytest.raises(AuthenticationError, match="401") as caught:
            _run(_changed_catalog(), sink, config, SECOND, tmp_path / "work")
        assert server.count() == 1  # the other three requests were never sent
    assert key not in str(caught.value) and "RECFORGE_TEST_KEY" in str(caught.value)
    assert sink.calls == 1 and sink.store.stored_stats(ENRICHMENT_ITEM_DESCRIPTIONS) == written


def test_a_failed_regeneration_keeps_the_previous_output_marked_stale(tmp_path: Path) -> None:
    """Every call fails (always 500): the four stored descriptions stay, each marked stale."""
    sink = _Tables(tmp_path / "home")
    _run(_item_tasks(), sink, ExtractiveConfig(), FIRST, tmp_path / "work")
    before = {r["item_id"]: r["description"] for r in sink.outputs().to_pylist()}
    with serve(ServerScript(default=Behavior.SERVER_ERROR)) as server, pytest.raises(FailureShareExceeded):
        _run(_changed_catalog(), sink, _http(server.base_url), SECOND, tmp_path / "work")
    rows = {r["item_id"]: r for r in sink.outputs().to_pylist()}
    assert {i: r["description"] for i, r in rows.items()} == before
    assert all(r["stale"] for r in rows.values())
    assert sink.store.read(ENRICHMENT_ITEM_DESCRIPTION_FAILURES)["item_id"].to_pylist() == ["i1", "i2", "i3", "i4"]
    # The next good run replaces them and clears the mark.
    result = _run(_changed_catalog(), sink, ExtractiveConfig(), SECOND, tmp_path / "work")
    assert result.stats.generated == 4 and not any(sink.outputs()["stale"].to_pylist())


def test_a_corrupt_checkpoint_is_discarded_with_a_warning_that_names_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = _Tables(tmp_path / "home")
    corrupt = tmp_path / "work" / "checkpoints" / "0123456789abcdef01234567.out.parquet"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"PAR1" + b"\x28\xb5\x2f\xfd" * 64 + b"PAR1")  # zstd magic, then garbage
    with caplog.at_level("WARNING"):
        result = _run(_item_tasks(), sink, ExtractiveConfig(), FIRST, tmp_path / "work")
    assert result.stats.generated == 4 and sink.outputs().num_rows == 4
    assert str(corrupt) in caplog.text and not corrupt.exists()


def test_two_concurrent_runs_share_the_work_folder_without_crashing_or_calling_twice(tmp_path: Path) -> None:
    import threading

    sink = _Tables(tmp_path / "home")
    errors: list[BaseException] = []
    with serve(ServerScript(latency_s=0.05)) as server:
        run = GenerationRun(EntityKind.ITEM, _http(server.base_url), tmp_path / "work", FIRST, beam=BeamSettings(batch_size=2))

        def one() -> None:
            try:
                run_generation(_item_tasks(), sink.outputs, run, sink)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and server.count() == 4  # each item asked once over both runs
    assert sink.outputs()["item_id"].to_pylist() == ["i1", "i2", "i3", "i4"]


def test_settings_that_change_the_output_are_in_the_cache_key(tmp_path: Path) -> None:
    sink = _Tables(tmp_path / "home")
    with serve() as server:
        _run(_item_tasks(), sink, _http(server.base_url), FIRST, tmp_path / "work")
        hotter = OpenAIChatConfig(**{**_http(server.base_url).__dict__, "temperature": 0.7})
        result = _run(_item_tasks(), sink, hotter, SECOND, tmp_path / "work")
        assert result.stats.generated == 4 and server.count() == 8
        longer = OpenAIChatConfig(**{**hotter.__dict__, "max_tokens": 900})
        _run(_item_tasks(), sink, longer, SECOND, tmp_path / "work")
        assert server.count() == 12
    assert ExtractiveConfig().fingerprint.startswith("extractive:")
