"""Scale-out: two process workers on one work pool share a backfill; no article is processed twice.

The work-pool route exactly as the docs give it: `prefect work-pool create`,
`prefect deploy --all` (prefect.yaml), two `prefect worker start`, then a run
of the `backfill-articles/backfill-workers` deployment, which splits a folder
into shard runs of `extract-articles/daily-workers` on the same pool. The
endpoint's global limits are configured on the server (as an operator would,
`prefect gcl create`), so the shard runs - separate processes - share them:
never more requests in flight or per second over all processes than the limits.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from flows.llm_limits import RATE_TOKEN_TTL_S, endpoint_key, limit_names, rate_bucket
from pipeline.llm import EndpointConfig
from tests.conftest import REPO, PrefectServer, start_background
from tests.support import audit_outputs, write_articles
from tests.support.fake_openai import FakeOpenAI, messages_text
from tests.test_llm_limits import windows_within

pytestmark = pytest.mark.slow
PREFECT = [sys.executable, "-m", "prefect"]
ARTICLES = 24
SHARDS = 6
MAX_IN_FLIGHT = 2  # over all shard runs; each run could send 4 at once
REQUESTS_PER_MINUTE = 600  # a bucket of 10 tokens, drawn in batches with background top-ups


def test_two_workers_share_a_backfill_and_process_every_article_exactly_once(prefect_server: PrefectServer, tmp_path: Path) -> None:
    server, env = prefect_server, prefect_server.env
    inbox, out = tmp_path / "backfill", tmp_path / "records"
    names = write_articles(inbox, ARTICLES, start=100)

    subprocess.run([*PREFECT, "work-pool", "create", "news-records", "--type", "process", "--overwrite"], cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    deploy = subprocess.run([*PREFECT, "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    assert (REPO / "prefect.yaml").read_text().count("- name:") == 2, "prefect deploy must not rewrite prefect.yaml"

    workers = {
        name: start_background([*PREFECT, "worker", "start", "--pool", "news-records", "--name", name, "--limit", "2"], env=env, log=tmp_path / f"{name}.log")
        for name in ("worker-a", "worker-b")
    }
    try:
        with FakeOpenAI(latency=0.05) as fake:
            concurrency_name, rate_name = limit_names(endpoint_key(EndpointConfig(fake.base_url, "fake-backfill")))
            bucket, per_second = rate_bucket(REQUESTS_PER_MINUTE)
            server.api("POST", "/v2/concurrency_limits/", json={"name": concurrency_name, "limit": MAX_IN_FLIGHT})
            server.api("POST", "/v2/concurrency_limits/", json={"name": rate_name, "limit": bucket, "slot_decay_per_second": per_second})
            # Held until one more than the limit are in flight (a broken limit) or none has come for 5 s.
            fake.hold_until(in_flight=MAX_IN_FLIGHT + 1, quiet_s=5.0)
            backfill = server.deployment("backfill-articles/backfill-workers")
            parameters = {
                "input_dir": str(inbox), "output_dir": str(out), "base_url": fake.base_url, "model": "fake-backfill",
                "shards": SHARDS, "poll_seconds": 1, "concurrency": 4,
            }  # fmt: skip
            parent = server.api("POST", f"/deployments/{backfill['id']}/create_flow_run", json={"parameters": parameters})
            parent = server.wait_for_flow_run(parent["id"], timeout=420)
            assert parent["state_type"] == "COMPLETED", parent["state"]
            requests = [messages_text(body) for body in fake.requests]
            sent = sorted(fake.request_times)
            assert fake.max_in_flight <= MAX_IN_FLIGHT and fake.gate_opened == "quiet", "more requests in flight over the workers than the limit"
    finally:
        for worker in workers.values():
            worker.stop()

    shards = [r for r in server.flow_runs(name={"like_": "backfill-shard-"}) if r["parameters"].get("input_dir") == str(inbox)]
    assert len(shards) == SHARDS and {r["state_type"] for r in shards} == {"COMPLETED"}
    assert sorted(r["parameters"]["shard"] for r in shards) == list(range(SHARDS))

    # Both workers took shard runs (a run is submitted to infrastructure by exactly one worker).
    ran = {name: set(re.findall(r"Flow run '(backfill-shard-\d+-of-\d+)' submitted to infrastructure", w.output())) for name, w in workers.items()}
    assert all(ran.values()), {name: sorted(runs) for name, runs in ran.items()}
    assert not ran["worker-a"] & ran["worker-b"]
    assert ran["worker-a"] | ran["worker-b"] == {r["name"] for r in shards}

    # Every article: one task run over the whole backfill, one record, and exactly its own LLM calls.
    tasks = Counter(t["name"].removeprefix("extract ") for t in server.task_runs([r["id"] for r in shards]))
    assert tasks == Counter(names), "an article was processed twice (or not at all)"
    audit = audit_outputs(out, names)
    assert not audit.lost and not audit.broken and not audit.duplicate_records and set(audit.records) == set(names)
    calls = {}
    for path in (out / "records").glob("*.json"):
        record = json.loads(path.read_text())
        calls[record["article"]["source_file"]] = (record["article"]["title"], record["provenance"]["usage"]["calls"])
    assert len(requests) == sum(n for _, n in calls.values()), "more LLM requests than the records account for"
    for name, (title, n) in calls.items():
        assert sum(title in text for text in requests) == n, f"{name} was sent to the model more than once"

    # The limits held over all processes: every slot went back when its run ended, and no window of
    # requests holds more than the bucket plus the rate over it (a token is spent at most
    # RATE_TOKEN_TTL_S after the server granted it).
    assert server.api("GET", f"/v2/concurrency_limits/{concurrency_name}")["active_slots"] == 0
    windows_within(sent, bucket, per_second, RATE_TOKEN_TTL_S)
