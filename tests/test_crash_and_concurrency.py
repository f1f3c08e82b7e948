"""A run killed with SIGKILL midway, then re-run; two runs at once on the same folders.

Runs are real subprocesses (`run_batch` through the LLM path) against the
fake OpenAI-compatible server, which adds latency so a run is slow enough
to be killed partway.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.run import RunConfig, run_batch
from schemas.records import ArticleRecord
from tests.support import API_KEY, Audit, audit_outputs, write_articles
from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
ARTICLES = 24
HANG_GUARD_S = 900  # only stops a hung run; a run on a loaded 2-core machine can take minutes

RUNNER = """
import sys
from pathlib import Path
from pipeline.llm import EndpointConfig
from pipeline.run import RunConfig, run_batch
inp, out, base_url, key = sys.argv[1:5]
endpoint = EndpointConfig(base_url=base_url, model="fake", api_key=key, timeout_s=10.0)
manifest = run_batch(RunConfig(Path(inp), Path(out), endpoint=endpoint))
print("DONE", manifest["run_id"], len(manifest["failures"]), flush=True)
"""


@pytest.fixture
def slow_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(latency=0.15) as fake:
        yield fake


def start_run(inp: Path, out: Path, fake: FakeOpenAI) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEWS_RECORDS_ROOTS": f"{REPO}{os.pathsep}{inp.parent}"}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(inp), str(out), fake.base_url, API_KEY],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def questions_per_article(fake: FakeOpenAI, inp: Path, tmp_path: Path) -> int:
    """How many model calls one of these articles takes (measured, not assumed)."""
    one = tmp_path / "one-article"
    one.mkdir(exist_ok=True)
    shutil.copy(sorted(inp.iterdir())[0], one)
    before = fake.requests_count
    run_batch(RunConfig(one, tmp_path / "one-article-out", endpoint=fake.endpoint_config(api_key=API_KEY, timeout_s=10.0)))
    return fake.requests_count - before


def assert_complete_and_valid(out: Path, names: list[str]) -> Audit:
    audit = audit_outputs(out, names)
    assert audit.broken == [], f"broken or partial files: {audit.broken}"
    assert audit.records == {name: 1 for name in names}, "exactly one record per article"
    assert audit.duplicate_rows == 0
    assert audit.lost == []
    records = [ArticleRecord.model_validate_json(p.read_bytes()) for p in (out / "records").glob("*.json")]
    for table, count in (("quotes.jsonl", lambda r: len(r.quotes)), ("article_organisations.jsonl", lambda r: len(r.organisations)), ("policy_areas.jsonl", lambda r: len(r.policy_areas)), ("unnamed_source_quotes.jsonl", lambda r: len(r.unnamed_source_quotes))):
        rows = [json.loads(line) for line in (out / table).read_text().splitlines()]
        assert len(rows) == sum(count(r) for r in records), f"{table} does not match the records"
        keys = Counter(json.dumps(row, sort_keys=True) for row in rows)
        assert max(keys.values(), default=1) == 1, f"duplicate rows in {table}"
    if (out / "quotes.jsonl").stat().st_size:
        quote_keys = Counter((row["article_id"], row["quote_index"]) for row in map(json.loads, (out / "quotes.jsonl").read_text().splitlines()))
        assert max(quote_keys.values()) == 1
    return audit


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sigkill_midway_then_rerun_processes_every_article_once(slow_fake: FakeOpenAI, tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, ARTICLES)

    run = start_run(inp, out, slow_fake)
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline and run.poll() is None:
        if len(list((out / "records").glob("*.json"))) >= 6:
            break
        time.sleep(0.02)
    assert run.poll() is None, f"the run ended before it could be killed: {run.communicate()}"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    assert run.returncode == -signal.SIGKILL

    written = len(list((out / "records").glob("*.json")))
    assert 6 <= written < ARTICLES, "the kill must land partway through the batch"
    assert not (out / "manifest.json").exists(), "a killed run must not have finished"
    # What a writer killed between creating and renaming its temporary file leaves behind:
    leftover = out / "records" / f".art_0000000000000000.json.{dead_pid()}.0badc0de.tmp"
    leftover.write_text('{"schema_version": "1.0.0", "article": {"id": "art_')
    per_article = questions_per_article(slow_fake, inp, tmp_path)
    before = slow_fake.requests_count

    manifest = run_batch(RunConfig(inp, out, endpoint=slow_fake.endpoint_config(api_key=API_KEY, timeout_s=10.0)))

    assert manifest["failures"] == []
    assert manifest["records_cached"] >= written - 1  # the article being written at the kill may not have landed
    assert manifest["records_written"] + manifest["records_cached"] == ARTICLES
    assert slow_fake.requests_count - before == manifest["records_written"] * per_article, "the re-run must ask only about unfinished articles"
    assert not leftover.exists(), "temporary files of killed writers must be cleaned up"
    assert_complete_and_valid(out, names)


def test_two_runs_at_once_on_the_same_folders(slow_fake: FakeOpenAI, tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 20)

    runs = [start_run(inp, out, slow_fake) for _ in range(2)]
    results = [run.communicate(timeout=HANG_GUARD_S) for run in runs]

    for run, (stdout, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr[-3000:]
        assert "DONE" in stdout and stdout.strip().endswith(" 0"), stdout
    audit = assert_complete_and_valid(out, names)
    run_manifests = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len(run_manifests) == 2
    for manifest in run_manifests:
        assert manifest["failures"] == []
        assert manifest["records_written"] + manifest["records_cached"] == 20
    # Each article extracted exactly once between the two runs: the article locks, not luck, decide who does it.
    assert sum(m["records_written"] for m in run_manifests) == 20, "an article was extracted by both runs (or by neither)"
    requests = slow_fake.requests_count
    assert requests == 20 * questions_per_article(slow_fake, inp, tmp_path), "the model was asked about an article twice"
    assert audit.manifest is not None and audit.manifest["run_id"] in {m["run_id"] for m in run_manifests}


def test_two_runs_in_threads_of_one_process(slow_fake: FakeOpenAI, tmp_path: Path) -> None:
    # Prefect runs tasks in threads: the locks must hold between threads too.
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 12)
    endpoint = slow_fake.endpoint_config(api_key=API_KEY, timeout_s=10.0)
    manifests: list[dict] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            manifests.append(run_batch(RunConfig(inp, out, endpoint=endpoint)))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=HANG_GUARD_S)

    assert errors == [] and len(manifests) == 2
    assert all(m["failures"] == [] for m in manifests)
    assert sum(m["records_written"] for m in manifests) == 12, "an article was extracted by both runs (or by neither)"
    assert slow_fake.requests_count == 12 * questions_per_article(slow_fake, inp, tmp_path)
    assert_complete_and_valid(out, names)
