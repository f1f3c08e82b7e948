"""Production mode: the Prefect server on PostgreSQL, started by the project's scripts.

`NEWS_PREFECT_DB=postgres scripts/prefect-server.sh start` initialises a local
PostgreSQL cluster under PREFECT_HOME/postgres (Debian's `postgresql`,
scripts/install-postgres.sh), starts it on 127.0.0.1 with a generated password and
points the server at it. A deployment of the extraction flow then runs through a
process worker with the endpoint's global concurrency and rate limits configured;
the records, the limits and the database are checked, and the cluster is deleted.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.llm_limits import RATE_TOKEN_TTL_S, endpoint_key, limit_names
from pipeline.llm import EndpointConfig
from tests.conftest import REPO, PrefectServer, start_background, start_prefect_server, stop_prefect_server
from tests.support import audit_outputs, write_articles
from tests.support.fake_openai import FakeOpenAI
from tests.test_llm_limits import windows_within

pytestmark = pytest.mark.slow
PREFECT = [sys.executable, "-m", "prefect"]
PG_SCRIPT = REPO / "scripts" / "prefect-postgres.sh"
ARTICLES = 6


def require_postgres() -> None:
    if not any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")) and not os.environ.get("NEWS_PG_BIN"):
        pytest.fail("PostgreSQL not found: run scripts/install-postgres.sh (make postgres)")


def psql(env: dict[str, str], sql: str) -> str:
    """One query against the server's database, through the script (its role, the password from its pgpass file)."""
    cmd = ["bash", str(PG_SCRIPT), "psql", "-tAc", sql]
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.fixture
def postgres_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrefectServer]:
    """A Prefect server on a fresh PostgreSQL cluster; the cluster is deleted afterwards."""
    require_postgres()
    # Not under pytest's tmp folder: that is private to root (0700), and the cluster runs as `postgres` when we are root.
    home = Path(tempfile.mkdtemp(prefix="news-pg-"))
    home.chmod(0o755)
    monkeypatch.setenv("NEWS_PREFECT_DB", "postgres")
    server = start_prefect_server(home)
    try:
        yield server
    finally:
        stop_prefect_server(server)
        subprocess.run(["bash", str(PG_SCRIPT), "destroy"], env={**server.env, "NEWS_PREFECT_HOME": str(home)}, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def test_deployment_on_a_postgres_backed_server_obeys_the_endpoint_limits(postgres_server: PrefectServer, tmp_path: Path) -> None:
    server, env, home = postgres_server, postgres_server.env, postgres_server.home
    status = subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "database postgres" in status.stdout, status.stdout + status.stderr
    assert not (home / "prefect.db").exists(), "the server must not fall back to SQLite"
    pgpass = home / "postgres.pgpass"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    password = pgpass.read_text().strip().rsplit(":", 1)[1]
    assert len(password) >= 24

    inbox, out = tmp_path / "inbox", tmp_path / "records"
    names = write_articles(inbox, ARTICLES, start=700)
    subprocess.run([*PREFECT, "work-pool", "create", "news-records", "--type", "process", "--overwrite"], cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    deploy = subprocess.run([*PREFECT, "--no-prompt", "deploy", "--name", "daily-workers"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    worker = start_background([*PREFECT, "worker", "start", "--pool", "news-records", "--name", "pg-worker", "--limit", "1"], env=env, log=tmp_path / "worker.log")
    try:
        with FakeOpenAI(latency=0.2) as fake:
            parameters = {
                "input_dir": str(inbox), "output_dir": str(out), "base_url": fake.base_url, "model": "fake-pg",
                "concurrency": 3, "llm_max_in_flight": 1, "llm_requests_per_minute": 600, "fail_on_article_errors": True,
            }  # fmt: skip
            deployment = server.deployment("extract-articles/daily-workers")
            run = server.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
            run = server.wait_for_flow_run(run["id"], timeout=420)
            assert run["state_type"] == "COMPLETED", (run["state"], worker.output()[-4000:])
            assert fake.requests_count >= ARTICLES
            assert fake.max_in_flight == 1, "3 articles at once, but the endpoint's concurrency limit is 1"
            sent = sorted(fake.request_times)
            key = endpoint_key(EndpointConfig(fake.base_url, "fake-pg"))
    finally:
        worker.stop()

    # One record per article, nothing lost, broken or duplicated.
    audit = audit_outputs(out, names)
    assert not audit.lost and not audit.broken and not audit.duplicate_records and set(audit.records) == set(names)

    # Both limits exist on the server with the run's settings, and were used: every in-flight slot was
    # released again (its lease-based occupancy was recorded), and the rate limit's bucket was drawn on.
    concurrency_name, rate_name = limit_names(key)
    concurrency = server.api("GET", f"/v2/concurrency_limits/{concurrency_name}")
    rate = server.api("GET", f"/v2/concurrency_limits/{rate_name}")
    assert concurrency["limit"] == 1 and concurrency["active_slots"] == 0
    assert rate["limit"] == 10 and rate["slot_decay_per_second"] == pytest.approx(10.0)
    # No window of requests holds more than the bucket plus the rate over it (a token is spent at most
    # RATE_TOKEN_TTL_S after the server granted it).
    windows_within(sent, 10, 10.0, RATE_TOKEN_TTL_S)

    # The state is in PostgreSQL: the run, its task runs and the limits are rows of the server's database.
    assert psql(env, f"SELECT state_type FROM flow_run WHERE id = '{run['id']}'") == "COMPLETED"
    assert int(psql(env, f"SELECT count(*) FROM task_run WHERE flow_run_id = '{run['id']}'")) == ARTICLES
    occupancy = psql(env, f"SELECT avg_slot_occupancy_seconds FROM concurrency_limit_v2 WHERE name = '{concurrency_name}'")
    assert float(occupancy) != 2.0, "no in-flight slot was ever released (2.0 s is a new limit's value)"
    # The API shows rate slots after decay (none left by now); the row keeps what the last grant left.
    assert int(psql(env, f"SELECT active_slots FROM concurrency_limit_v2 WHERE name = '{rate_name}'")) >= 1, "no rate-limit slot was taken"

    # The generated password appears nowhere but in its 0600 file.
    logs = [home / "server.log", home / "postgres" / "postgres.log", tmp_path / "worker.log"]
    exported = subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "env"], env=env, capture_output=True, text=True, timeout=60).stdout
    for text in [exported, status.stdout, *(path.read_text(errors="replace") for path in logs if path.exists())]:
        assert password not in text


def test_stop_stops_postgres_and_destroy_deletes_the_cluster(postgres_server: PrefectServer) -> None:
    server, home = postgres_server, postgres_server.home
    script = ["bash", str(REPO / "scripts" / "prefect-server.sh")]
    stopped = subprocess.run([*script, "stop"], env=server.env, capture_output=True, text=True, timeout=120)
    assert "Stopped PostgreSQL" in stopped.stdout, stopped.stdout + stopped.stderr
    pg_status = subprocess.run(["bash", str(PG_SCRIPT), "status"], env=server.env, capture_output=True, text=True, timeout=60)
    assert pg_status.returncode != 0, pg_status.stdout
    assert subprocess.run([*script, "status"], env=server.env, capture_output=True, timeout=60).returncode != 0

    # A restart reuses the cluster (same password file), then destroy removes it and the password.
    before = (home / "postgres.pgpass").read_text()
    subprocess.run([*script, "start"], env=server.env, check=True, capture_output=True, timeout=180)
    assert (home / "postgres.pgpass").read_text() == before
    subprocess.run([*script, "stop"], env=server.env, check=True, capture_output=True, timeout=120)
    subprocess.run(["bash", str(PG_SCRIPT), "destroy"], env=server.env, check=True, capture_output=True, timeout=120)
    assert not (home / "postgres").exists() and not (home / "postgres.pgpass").exists()
