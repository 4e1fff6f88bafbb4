"""The Dagster UI serves the definitions: a real webserver, queried over HTTP like the browser does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_dagster_webserver_loads_the_code_location_and_lists_assets(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RECFORGE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dagster-webserver did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(1)
        query = {"query": "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } "
                          "assetNodes { assetKey { path } } }"}
        request = urllib.request.Request(f"{base}/graphql", data=json.dumps(query).encode(), headers={"Content-Type": "application/json"})
        payload = json.loads(urllib.request.urlopen(request, timeout=60).read())
        statuses = payload["data"]["locationStatusesOrError"]["entries"]
        assert [e["loadStatus"] for e in statuses] == ["LOADED"]
        keys = {"/".join(n["assetKey"]["path"]) for n in payload["data"]["assetNodes"]}
        assert {"raw/events", "raw/impressions", "core/id_maps"} <= keys
        page = urllib.request.urlopen(f"{base}/assets", timeout=30).read().decode()
        assert "<title>Dagster" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
