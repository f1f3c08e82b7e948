#!/usr/bin/env python
"""Scale: realistic articles through the deployment on a process work pool, with 1 and 2 workers.

    .venv/bin/python scripts/bench_scale.py                                   # 1,000 articles, rules + LLM, 1 and 2 workers
    .venv/bin/python scripts/bench_scale.py --articles 10000 --paths llm --workers 2
    .venv/bin/python scripts/bench_scale.py --articles 200 --markdown /tmp/scale.md

What it runs, on this machine:

* articles: PolNeAR train texts of 300-1,500 words from ../shared/corpora (third-party:
  written to a temporary input folder, never into the repository), cycled until there are
  `--articles` of them; each copy gets a distinct last line ("Archive item N."), so every
  file is a distinct article (the article id is a hash of the text);
* a Prefect server from scripts/prefect-server.sh on `--database` (postgres by default), the
  `extract-articles/daily-workers` deployment of prefect.yaml on a process work pool, and
  `--workers` `prefect worker start` processes; the folder is split into one shard run per
  worker (so each worker's flow-run process handles its whole share: memory over a long run);
* for the LLM path, a fake OpenAI-compatible endpoint (tests/support/fake_openai.py, in its
  own process) that takes `--latency` seconds per answer and answers 429 above
  `--endpoint-rpm` requests per minute; the runs set the endpoint's Prefect limits to the same
  rate and `--concurrency` x workers requests in flight.

It reports articles per second, CPU seconds per article (all flow-run and worker processes,
the Prefect server and PostgreSQL; "pipeline" is the same articles through the plain pipeline,
`pipeline.run.run_batch`, in this process; "Prefect" is the rest), peak RSS of each worker's
flow-run process and of the server, the RSS of the flow-run processes after 10 % of the
articles and at the end, the Prefect database and outputs/ sizes, and checks that every
article has exactly one record. The section "Scale (Prefect work pool)" of `--markdown` is
replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
from bench_overhead import _free_port, descendants, start_prefect_server, tree_cpu, write_section  # noqa: E402
from bench_overhead import _children  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "polnear" / "train" / "text"  # or --corpus
SECTION = "## Scale (Prefect work pool)"
PREFECT = [sys.executable, "-m", "prefect"]
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------- articles


def write_corpus_articles(folder: Path, count: int, corpus: Path, *, seed: int = 12, min_words: int = 300, max_words: int = 1500) -> list[str]:
    """`count` articles from the PolNeAR train texts in `corpus` of min..max words, cycled; returns their file names."""
    texts = []
    for path in sorted(corpus.glob("*.txt")):
        text = path.read_text(encoding="utf-8").strip()
        if min_words <= len(text.split()) <= max_words:
            texts.append(text)
    if not texts:
        raise SystemExit(f"no PolNeAR train texts of {min_words}-{max_words} words under {corpus}")
    random.Random(seed).shuffle(texts)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        text = texts[i % len(texts)]
        title = text.split("\n", 1)[0][:120]
        name = f"a_{i:05d}.txt"
        (folder / name).write_text(f"title: {title}\nsource: PolNeAR train sample\n\n{text}\n\nArchive item {i}.\n", encoding="utf-8")
        names.append(name)
    return names


# ---------------------------------------------------------------- fake endpoint with a rate limit


def serve_rate_limited_fake(port: int, latency: float, rpm: float) -> None:
    """Run tests.support.fake_openai's server, answering 429 (Retry-After) above `rpm` (a one-second bucket)."""
    from tests.support.fake_openai import FakeOpenAI, Fault

    class RateLimited(FakeOpenAI):
        def __init__(self) -> None:
            super().__init__(latency=latency, port=port, model="bench")
            self.rate, self.tokens, self.stamp, self.refused = rpm / 60.0, max(1.0, rpm / 60.0), time.monotonic(), 0

        def _pick(self, text: str) -> Fault:  # called under the server's lock
            now = time.monotonic()
            self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1.0:
                self.refused += 1
                return Fault("429", retry_after=max(0.1, (1.0 - self.tokens) / self.rate))
            self.tokens -= 1.0
            return super()._pick(text)

    server = RateLimited().start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"fake-openai listening on {server.base_url}", flush=True)
    stop.wait()
    server.stop()
    print(json.dumps({"requests": server.requests_count, "refused": server.refused, "max_in_flight": server.max_in_flight}), flush=True)


class FakeEndpoint:
    def __init__(self, latency: float, rpm: float) -> None:
        self.port = _free_port()
        cmd = [sys.executable, __file__, "--serve-fake", str(self.port), "--latency", str(latency), "--endpoint-rpm", str(rpm)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening" not in line:
            raise RuntimeError(f"fake endpoint did not start: {line}")
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def cpu_seconds(self) -> float:
        return tree_cpu(self.proc.pid)

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- /proc accounting


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in kB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return int(values.get("VmRSS", 0)), int(values.get("VmHWM", 0))


@dataclass
class Sampler:
    """Samples, every `every` seconds, the workers' flow-run processes (RSS) and the records written."""

    workers: dict[str, int]
    records_dir: Path
    total: int
    every: float = 1.0
    peak_flow_kb: dict[str, int] = field(default_factory=dict)
    peak_worker_kb: dict[str, int] = field(default_factory=dict)
    rss_at_10pct: dict[str, int] = field(default_factory=dict)
    rss_last: dict[str, int] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)  # 1-minute load average of the machine
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            tree = _children()
            self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            done = len(os.listdir(self.records_dir)) if self.records_dir.exists() else 0
            for name, pid in self.workers.items():
                self.peak_worker_kb[name] = max(self.peak_worker_kb.get(name, 0), rss_kb(pid)[1])
                flows = descendants(pid, tree)[1:]  # the flow-run process(es) this worker started
                if not flows:
                    continue
                rss = sum(rss_kb(p)[0] for p in flows)
                if not rss:  # exiting: no memory map left to count
                    continue
                self.peak_flow_kb[name] = max(self.peak_flow_kb.get(name, 0), max(rss_kb(p)[1] for p in flows))
                if done >= self.total * 0.1 and name not in self.rss_at_10pct:
                    self.rss_at_10pct[name] = rss
                self.rss_last[name] = rss


# ---------------------------------------------------------------- one configuration


@dataclass
class Result:
    path: str
    workers: int
    articles: int
    wall_s: float
    cpu_s: float
    cpu_flow_s: float
    cpu_server_s: float
    cpu_db_s: float
    cpu_fake_s: float
    requests: int
    refused: int
    peak_flow_mb: list[float]
    peak_server_mb: float
    rss_10pct_mb: list[float]
    rss_end_mb: list[float]
    outputs_mb: float
    db_mb: float
    exact: bool
    load: float

    @property
    def per_second(self) -> float:
        return self.articles / self.wall_s


@dataclass
class Bench:
    work: Path
    env: dict[str, str]
    database: str
    names: list[str]
    inbox: Path
    args: argparse.Namespace

    @property
    def home(self) -> Path:
        return Path(self.env["NEWS_PREFECT_HOME"])

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        response = httpx.request(method, self.env["PREFECT_API_URL"] + path, timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def server_pids(self) -> tuple[int, int | None]:
        server = int((self.home / "server.pid").read_text())
        postmaster = self.home / "postgres" / "data" / "postmaster.pid"
        return server, (int(postmaster.read_text().split()[0]) if self.database == "postgres" else None)

    def db_mb(self) -> float:
        if self.database == "postgres":
            cmd = ["bash", str(REPO / "scripts" / "prefect-postgres.sh"), "psql", "-tAc", "SELECT pg_database_size('prefect')"]
            return int(subprocess.run(cmd, env=self.env, check=True, capture_output=True, text=True).stdout.strip()) / 1e6
        return sum(p.stat().st_size for p in self.home.glob("prefect.db*")) / 1e6

    def start_workers(self, count: int) -> dict[str, subprocess.Popen]:
        workers = {}
        for i in range(count):
            name = f"scale-worker-{i + 1}"
            log = (self.work / f"{name}.log").open("wb")
            cmd = [*PREFECT, "worker", "start", "--pool", "news-records", "--name", name, "--limit", "1"]
            workers[name] = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return workers

    def run(self, path: str, workers: int) -> Result:
        out = self.work / f"out-{path}-{workers}"
        deployment = self.api("GET", "/deployments/name/extract-articles/daily-workers")
        fake = FakeEndpoint(self.args.latency, self.args.endpoint_rpm) if path == "llm" else None
        procs = self.start_workers(workers)
        try:
            server_pid, db_pid = self.server_pids()
            time.sleep(3)  # workers registered and polling
            cpu0 = {"flow": sum(tree_cpu(p.pid) for p in procs.values()), "server": tree_cpu(server_pid), "db": tree_cpu(db_pid) if db_pid else 0.0}
            fake0 = fake.cpu_seconds() if fake else 0.0
            sampler = Sampler({n: p.pid for n, p in procs.items()}, out / "records", len(self.names)).start()
            params: dict[str, Any] = {"input_dir": str(self.inbox), "output_dir": str(out), "rerun": "all", "concurrency": self.args.concurrency, "shards": workers}
            if fake is None:
                params["rules_only"] = True
            else:
                params.update(base_url=fake.base_url, model="bench", llm_requests_per_minute=self.args.endpoint_rpm, llm_max_in_flight=self.args.concurrency * workers)
            runs = [self.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": {**params, "shard": i}})["id"] for i in range(workers)]
            print(f"  {path}, {workers} worker(s): {len(runs)} shard runs of {len(self.names)} articles ...", file=sys.stderr, flush=True)
            finished = self.wait(runs)
            sampler.stop()
            cpu1 = {"flow": sum(tree_cpu(p.pid) for p in procs.values()), "server": tree_cpu(server_pid), "db": tree_cpu(db_pid) if db_pid else 0.0}
            fake_cpu = (fake.cpu_seconds() - fake0) if fake else 0.0
        except BaseException:
            stop_workers(procs.values())
            if fake is not None:
                fake.proc.kill()
            raise
        stop_workers(procs.values())
        served = fake.stop() if fake else {"requests": 0, "refused": 0}
        bad = [r for r in finished if r["state_type"] != "COMPLETED"]
        if bad:
            raise RuntimeError(f"{len(bad)} shard runs did not complete: {[r['state']['message'] for r in bad][:2]}")
        starts = [datetime.fromisoformat(r["start_time"]) for r in finished]
        ends = [datetime.fromisoformat(r["end_time"]) for r in finished]
        from tests.support import audit_outputs

        audit = audit_outputs(out, self.names)
        exact = not audit.lost and not audit.broken and not audit.duplicate_records and set(audit.records) == set(self.names)
        mb = lambda kb: round(kb / 1024, 1)  # noqa: E731
        server_peak = max(rss_kb(p)[1] for p in descendants(server_pid))
        result = Result(
            path=path, workers=workers, articles=len(self.names), wall_s=(max(ends) - min(starts)).total_seconds(),
            cpu_s=sum(cpu1.values()) - sum(cpu0.values()), cpu_flow_s=cpu1["flow"] - cpu0["flow"],
            cpu_server_s=cpu1["server"] - cpu0["server"], cpu_db_s=cpu1["db"] - cpu0["db"], cpu_fake_s=fake_cpu,
            requests=served["requests"], refused=served["refused"],
            peak_flow_mb=[mb(v) for v in sampler.peak_flow_kb.values()], peak_server_mb=mb(server_peak),
            rss_10pct_mb=[mb(v) for v in sampler.rss_at_10pct.values()], rss_end_mb=[mb(v) for v in sampler.rss_last.values()],
            outputs_mb=sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, db_mb=self.db_mb(), exact=exact,
            load=sum(sampler.loads) / max(1, len(sampler.loads)),
        )  # fmt: skip
        print(f"  -> {result.per_second:.1f} articles/s, {result.cpu_s / result.articles * 1000:.0f} ms CPU per article, exactly once: {exact}", file=sys.stderr, flush=True)
        shutil.rmtree(out, ignore_errors=True)
        return result

    def wait(self, run_ids: list[str]) -> list[dict]:
        while True:
            runs = [self.api("GET", f"/flow_runs/{run_id}") for run_id in run_ids]
            if all(r["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for r in runs):
                return runs
            time.sleep(2)


def stop_workers(procs: Any) -> None:
    """Ctrl-C each worker (the CLI's own shutdown), then kill what is still there after 30 s."""
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    for proc in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def pipeline_cpu_per_article(work: Path, inbox: Path, names: list[str], sample: int, base_url: str | None) -> float:
    """CPU seconds per article of the plain pipeline (parse, rules, LLM client, write, tables) in this process."""
    from pipeline.llm import EndpointConfig
    from pipeline.run import RunConfig, run_batch

    subset = work / f"pipeline-sample-{'llm' if base_url else 'rules'}"
    subset.mkdir()
    for name in names[:sample]:
        shutil.copy(inbox / name, subset / name)
    endpoint = EndpointConfig(base_url=base_url, model="bench") if base_url else None
    warm = work / "pipeline-warm"
    warm.mkdir(exist_ok=True)
    shutil.copy(inbox / names[-1], warm / names[-1])
    run_batch(RunConfig(warm, work / "pipeline-warm-out", endpoint, rules_only=base_url is None, rerun="all"))  # spaCy, imports
    started = time.process_time()
    manifest = run_batch(RunConfig(subset, work / f"{subset.name}-out", endpoint, rules_only=base_url is None, rerun="all"))
    seconds = time.process_time() - started
    assert not manifest["failures"], manifest["failures"][:2]
    return seconds / sample


# ---------------------------------------------------------------- a small run into a big output folder

EXISTING_SECTION = "## Run over existing records"
STEPS = ("plan_run", "record_catalogue", "supersede_records", "update_tables", "update_registry", "write_review_page")


def measure_existing(work: Path, inbox: Path, names: list[str], existing: int, new: int) -> dict[str, Any]:
    """Wall and CPU seconds of a rules-only `run_batch` of `new` articles into a folder with `existing` records.

    The existing records are copies of 20 real records (rules over 20 of the articles), each under
    its own article id and source file, so the tables, registry and review page have `existing`
    records' worth of rows. Copied in behind the pipeline's back, they are first taken in by a run
    over the 20 seed articles (nothing to extract: every record is new to the tables' and the
    registry's state, so every record is read, as in a full rebuild); that run is timed as
    `warmup_s`. Then the measured run: `new` new articles."""
    import hashlib

    import pipeline.run as run
    from pipeline.run import RunConfig, run_batch

    out, seeds_in, fresh = work / "existing-out", work / "existing-seeds", work / "existing-new"
    for folder, chosen in ((seeds_in, names[:20]), (fresh, names[20 : 20 + new])):
        folder.mkdir()
        for name in chosen:
            shutil.copy(inbox / name, folder / name)
    run_batch(RunConfig(seeds_in, out, None, rules_only=True, rerun="all"))
    seeds = [p.read_text(encoding="utf-8") for p in sorted((out / "records").glob("*.json"))]
    for i in range(existing - len(seeds)):
        seed = seeds[i % len(seeds)]
        old = json.loads(seed)["article"]
        new_id = "art_" + hashlib.sha256(f"existing-{i}".encode()).hexdigest()[:16]
        text = seed.replace(old["id"], new_id).replace(json.dumps(old["source_file"]), json.dumps(f"archive/{i:05d}.txt"))
        (out / "records" / f"{new_id}.json").write_text(text, encoding="utf-8")
    spent: dict[str, float] = dict.fromkeys(STEPS, 0.0)
    warmup = time.perf_counter()
    run_batch(RunConfig(seeds_in, out, None, rules_only=True, rerun="missing"))
    warmup = time.perf_counter() - warmup

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0

        return wrapper

    originals = {name: getattr(run, name) for name in STEPS}
    for name, fn in originals.items():
        setattr(run, name, timed(name, fn))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        manifest = run_batch(RunConfig(fresh, out, None, rules_only=True, rerun="missing"))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for name, fn in originals.items():
            setattr(run, name, fn)
    records = len(list((out / "records").glob("*.json")))
    return {"existing": existing, "new": manifest["records_written"], "records": records, "wall_s": wall, "cpu_s": cpu, "steps": spent, "warmup_s": warmup}


def render_existing(result: dict[str, Any], command: str) -> str:
    steps = ", ".join(f"`{name}` {seconds:.1f} s" for name, seconds in result["steps"].items())
    return "\n".join([
        EXISTING_SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}`: a rules-only plain run (`run_batch`) of "
        f"{result['new']} new articles into an output folder that already holds {result['existing']:,} records "
        f"(copies of 20 real records under distinct ids). **{result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU**; "
        f"of which {steps}. Only the records this run wrote are read: tables, registry and review page are updated from them "
        "and the incremental state in `.locks/state/`. For comparison, the run before it, which took in the copied records "
        f"(every one read, as a full rebuild does): {result['warmup_s']:.1f} s wall.",
        "",
    ])  # fmt: skip


# ---------------------------------------------------------------- report


def render(results: list[Result], pipeline_cpu: dict[str, float], *, args: argparse.Namespace, command: str, database: str) -> str:
    import prefect

    ms = lambda s, n: f"{s / n * 1000:.0f}"  # noqa: E731
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on {os.cpu_count()} CPUs (shared with other work), "
        f"Prefect {prefect.__version__}, server on {database} (scripts/prefect-server.sh). {results[0].articles:,} articles: "
        "PolNeAR train texts of 300-1,500 words, cycled, each copy made distinct by a last line. The `extract-articles/daily-workers` "
        "deployment on a process work pool; one shard run per worker; "
        f"`concurrency={args.concurrency}` per run. LLM path: a fake OpenAI-compatible endpoint answering in {args.latency:g} s, "
        f"429 above {args.endpoint_rpm:g} requests per minute; the runs set the endpoint's Prefect limits to that rate and "
        f"{args.concurrency} requests in flight per worker. CPU: all worker and flow-run processes, the Prefect server and "
        "PostgreSQL; *pipeline* is the same articles through the plain pipeline (`run_batch`, no Prefect), *Prefect* the rest.",
        "",
        "| Path | Workers | Machine load (1-min avg) | Articles/s | CPU ms/article (pipeline + Prefect) | of which server + DB | Peak RSS flow-run process (MB) | RSS at 10 % -> end (MB) | Peak RSS server (MB) | LLM requests (429) | Exactly one record each |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        total = r.cpu_s / r.articles * 1000
        pipe = pipeline_cpu[r.path] * 1000
        rss = ", ".join(f"{a:.0f} -> {b:.0f}" for a, b in zip(r.rss_10pct_mb, r.rss_end_mb, strict=False))
        lines.append(
            f"| {r.path} | {r.workers} | {r.load:.1f} | {r.per_second:.1f} | {total:.0f} ({pipe:.0f} + {total - pipe:.0f}) | {ms(r.cpu_server_s + r.cpu_db_s, r.articles)} "
            f"| {', '.join(f'{v:.0f}' for v in r.peak_flow_mb)} | {rss} | {r.peak_server_mb:.0f} | {r.requests:,} ({r.refused}) | {'yes' if r.exact else 'NO'} |"
        )
    last = results[-1]
    lines += [
        "",
        f"Sizes after the last run: Prefect database {last.db_mb:.0f} MB (all runs of this benchmark), outputs/ of one run "
        f"{last.outputs_mb:.0f} MB for {last.articles:,} articles.",
    ]
    for path in dict.fromkeys(r.path for r in results):
        rows = {r.workers: r for r in results if r.path == path}
        if 1 in rows and 2 in rows:
            lines.append(f"`{path}`: 2 workers run {rows[2].per_second / rows[1].per_second:.2f}x the articles per second of 1.")
        best = max(rows.values(), key=lambda r: r.workers)
        ceiling = os.cpu_count() / (best.cpu_s / best.articles)
        lines.append(
            f"`{path}`: CPU ceiling of this machine = {os.cpu_count()} cores / {best.cpu_s / best.articles * 1000:.0f} ms CPU per article "
            f"= {ceiling:.1f} articles/s (measured {best.per_second:.1f})."
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--paths", default="rules,llm", help="comma-separated: rules, llm")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--concurrency", type=int, default=32, help="articles at a time per shard run")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per answer of the fake endpoint")
    parser.add_argument("--endpoint-rpm", type=float, default=6000, help="the fake endpoint's rate limit (requests per minute)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pipeline-sample", type=int, default=50, help="articles for the plain-pipeline CPU figure")
    parser.add_argument("--existing", type=int, default=0, help="only measure a run of --new articles into a folder of this many records")
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of PolNeAR train texts")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md", help="file whose section is replaced")
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_rate_limited_fake(args.serve_fake, args.latency, args.endpoint_rpm)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user when we are root; it must reach the cluster folder
    inbox = work / "inbox"
    command = "python scripts/bench_scale.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    if args.existing:
        names = write_corpus_articles(inbox, 20 + args.new, args.corpus)
        os.environ["NEWS_RECORDS_ROOTS"] = str(work)
        try:
            result = measure_existing(work, inbox, names, args.existing, args.new)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        section = render_existing(result, command)
        write_section(args.markdown, section, EXISTING_SECTION)
        print(section)
        return 0
    names = write_corpus_articles(inbox, args.articles, args.corpus)
    os.environ.update(NEWS_RECORDS_ROOTS=str(work), NEWS_PYTHON=sys.executable)
    settings = {"NEWS_PREFECT_HOME": str(work / "prefect-home")}
    results: list[Result] = []
    pipeline_cpu: dict[str, float] = {}
    try:
        settings = start_prefect_server(work / "prefect-home", args.database)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NEWS_LLM_", "OPENAI_"))}
        env.update(settings, NEWS_RECORDS_HOME=str(REPO), PREFECT_WORKER_QUERY_SECONDS="2", PYTHONUNBUFFERED="1")
        subprocess.run([*PREFECT, "work-pool", "create", "news-records", "--type", "process", "--overwrite"], cwd=REPO, env=env, check=True, capture_output=True)
        subprocess.run([*PREFECT, "--no-prompt", "deploy", "--name", "daily-workers"], cwd=REPO, env=env, check=True, capture_output=True)
        bench = Bench(work, env, args.database, names, inbox, args)
        for path in filter(None, args.paths.split(",")):
            fake = FakeEndpoint(0.0, 1e9) if path == "llm" else None
            try:
                pipeline_cpu[path] = pipeline_cpu_per_article(work, inbox, names, min(args.pipeline_sample, len(names)), fake.base_url if fake else None)
            finally:
                if fake:
                    fake.stop()
            print(f"{path}: plain pipeline {pipeline_cpu[path] * 1000:.0f} ms CPU per article", file=sys.stderr, flush=True)
            for workers in (int(w) for w in args.workers.split(",")):
                results.append(bench.run(path, workers))
                # After every configuration, so that what was measured survives a later failure.
                write_section(args.markdown, render(results, pipeline_cpu, args=args, command=command, database=args.database), SECTION)
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "stop"], env={**os.environ, **settings}, stdout=subprocess.DEVNULL)
        if args.database == "postgres":
            subprocess.run(["bash", str(REPO / "scripts" / "prefect-postgres.sh"), "destroy"], env={**os.environ, **settings}, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    section = render(results, pipeline_cpu, args=args, command=command, database=args.database)
    write_section(args.markdown, section, SECTION)
    print("\n" + section)
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
