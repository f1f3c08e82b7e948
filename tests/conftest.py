"""Shared fixtures: a local Prefect server, in-process Prefect settings, served deployments, a browser.

All Prefect state lives in pytest's temporary folders: every server gets its
own PREFECT_HOME (one SQLite file per server, never shared) on a free port of
127.0.0.1, started and stopped by the project's own `scripts/prefect-server.sh`.
Telemetry is off everywhere.

    def test_something(prefect_server):            # session-wide server
        subprocess.run([...], env=prefect_server.env)   # CLI, workers, serve
        prefect_server.api("POST", "/flow_runs/filter", json={...})

    def test_in_process(prefect_settings): ...     # flows called in-process report to it

    def test_served(serve_deployment): serve_deployment("--interval", "20", ...)

    def test_ui(browser_page): browser_page.goto(...)   # headless Debian Chromium via Playwright
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = REPO / "scripts" / "prefect-server.sh"
SERVE_SCRIPT = REPO / "scripts" / "serve.sh"
CHROMIUM = os.environ.get("NEWS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def require_corpora() -> Path:
    """The labelled corpora (../shared/corpora, or NEWS_RECORDS_CORPORA): skip without them on a developer's
    machine; on CI their absence is a failure."""
    from pipeline.corpora import corpora_dir

    corpora = corpora_dir()
    if not (corpora / "tools").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the corpora are missing at {corpora}; CI must run beside ../shared/corpora")
        pytest.skip(f"the corpora are not available at {corpora}")
    return corpora


@pytest.fixture(autouse=True)
def _assist_strategy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that point the pipeline at the schema-driven fake server exercise the `assist` questions unless
    they ask for another strategy (a remote endpoint would otherwise default to `llm`; see tests/test_llm_strategy.py)."""
    monkeypatch.setenv("NEWS_EXTRACTION_STRATEGY", os.environ.get("NEWS_EXTRACTION_STRATEGY") or "assist")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_env(**extra: str) -> dict[str, str]:
    """This process's environment with telemetry off and no real LLM endpoint or key leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NEWS_LLM_", "OPENAI_"))}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class PrefectServer:
    """A Prefect server on 127.0.0.1 with its own PREFECT_HOME; `env` points subprocesses at it."""

    home: Path
    port: int
    env: dict[str, str] = field(repr=False)

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call to the server's API; the decoded JSON answer (None for an empty body)."""
        response = httpx.request(method, self.api_url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def flow_runs(self, **flow_run_filter: Any) -> list[dict]:
        body: dict[str, Any] = {"sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        if flow_run_filter:
            body["flow_runs"] = flow_run_filter
        return self.api("POST", "/flow_runs/filter", json=body)

    def deployment(self, name: str) -> dict:
        flow_name, deployment_name = name.split("/", 1)
        return self.api("GET", f"/deployments/name/{flow_name}/{deployment_name}")

    def task_runs(self, flow_run_ids: list[str]) -> list[dict]:
        body = {"flow_runs": {"id": {"any_": flow_run_ids}}, "limit": 200, "offset": 0}
        runs: list[dict] = []
        while batch := self.api("POST", "/task_runs/filter", json=body):
            runs += batch
            body["offset"] += len(batch)
        return runs

    def logs(self, flow_run_id: str) -> list[dict]:
        return self.api("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})

    def artifacts(self, flow_run_id: str) -> list[dict]:
        return self.api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})

    def wait_for_flow_run(self, flow_run_id: str, *, timeout: float = 180, states: set[str] = TERMINAL_STATES) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/flow_runs/{flow_run_id}")
            if run["state_type"] in states:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"flow run {run['name']} still {run['state_name']} after {timeout:g} s")
            time.sleep(1)


def start_prefect_server(home: Path, port: int | None = None) -> PrefectServer:
    """Start a server with the project's script (background, waits until healthy)."""
    port = port or free_port()
    env = quiet_env(NEWS_PREFECT_HOME=str(home), NEWS_PREFECT_PORT=str(port))
    subprocess.run(["bash", str(SERVER_SCRIPT), "start"], env=env, check=True, capture_output=True, text=True, timeout=180)
    exported = subprocess.run(["bash", str(SERVER_SCRIPT), "env"], env=env, check=True, capture_output=True, text=True).stdout
    for line in exported.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'\"")
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")
    return PrefectServer(home=home, port=port, env=env)


def stop_prefect_server(server: PrefectServer) -> None:
    if "prefect.logging.handlers" in sys.modules:  # send this process's pending run logs while the server is up
        from prefect.logging.handlers import APILogWorker

        with contextlib.suppress(Exception):
            APILogWorker.drain_all(timeout=10)
    subprocess.run(["bash", str(SERVER_SCRIPT), "stop"], env=server.env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One Prefect server for the session, on a free port, PREFECT_HOME in a temporary folder."""
    home = tmp_path_factory.mktemp("prefect-home")
    server = start_prefect_server(home)
    try:
        yield server
    finally:
        stop_prefect_server(server)


@pytest.fixture
def prefect_settings(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """Flows and clients called in this process talk to `prefect_server` (results in its storage)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    updates = {PREFECT_API_URL: prefect_server.api_url, PREFECT_LOCAL_STORAGE_PATH: str(prefect_server.storage), PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(updates=updates):
        yield prefect_server


@dataclass
class Background:
    """A process started in its own session (so it and its children can be stopped together)."""

    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_background(cmd: list[str], *, env: dict[str, str], log: Path, cwd: Path = REPO) -> Background:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    handle.close()
    return Background(proc, log)


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5, proc: Background | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.proc.returncode}) while waiting for {what}:\n{proc.output()[-4000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}" + (f":\n{proc.output()[-4000:]}" if proc else ""))
        time.sleep(interval)


@pytest.fixture
def serve_deployment(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Callable[..., Background]]:
    """Start `scripts/serve.sh ARGS` against `prefect_server`; waits until its deployment exists; stops it after the test."""
    started: list[Background] = []

    def serve(*args: str, name: str = "daily", env: dict[str, str] | None = None, timeout: float = 120) -> Background:
        proc = start_background(["bash", str(SERVE_SCRIPT), "--name", name, *args], env={**prefect_server.env, **(env or {})}, log=tmp_path / f"serve-{name}-{len(started)}.log")
        started.append(proc)

        def ready() -> bool:
            try:
                return prefect_server.deployment(f"extract-articles/{name}")["status"] == "READY"
            except httpx.HTTPStatusError:
                return False

        wait_until(ready, timeout=timeout, what=f"deployment extract-articles/{name} to be served", proc=proc, interval=1)
        return proc

    yield serve
    for proc in started:
        proc.stop()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium (scripts/install-browser.sh), fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/install-browser.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


