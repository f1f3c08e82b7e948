#!/usr/bin/env python
"""What Prefect costs: the extraction flow vs the same work through the plain pipeline functions.

    .venv/bin/python scripts/bench_overhead.py                  # 1,000 articles; writes BENCHMARKS.md
    .venv/bin/python scripts/bench_overhead.py --articles 50 --markdown /tmp/bench.md
    .venv/bin/python scripts/bench_overhead.py --articles 0 --limits-databases postgres,sqlite   # only the limits

1. Overhead. A zero-latency fake OpenAI-compatible server on 127.0.0.1 (its own
   process, `python -m tests.support.fake_openai`) answers every question with a
   valid canned extraction. The same short articles go through
   `pipeline.run.run_batch` (no Prefect) and through the `extract-articles` flow
   (one task run per article, cache lookups and persisted results, artifacts)
   against a local Prefect server started by scripts/prefect-server.sh (SQLite),
   one article at a time in both. Overhead per article = (flow time - plain time) / articles.
2. Limits. The flow with and without the endpoint's global concurrency + rate limits,
   on a server of each `--limits-databases` (SQLite, and PostgreSQL from
   scripts/prefect-postgres.sh), each in a child process with its own server; rounds
   of both runs in alternating order, cost = median of the rounds' paired differences.
3. Requests in flight. Against a fake server that takes 1 s per answer, a run with
   `concurrency=N` must keep N requests in flight (the fake server's gauge), and a
   per-endpoint global concurrency limit of N/2 must hold it to N/2.

The figures replace the "Pipeline overhead (Prefect)" section of BENCHMARKS.md
(other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SECTION = "## Pipeline overhead (Prefect)"
TARGET_MS = 25.0
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prefect_server(home: Path, database: str = "sqlite") -> dict[str, str]:
    """The project's server script on a free port, on `database` (sqlite | postgres); returns its environment settings."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # PostgreSQL runs as its own user when we are root; it must reach the cluster folder
    env = {**os.environ, "NEWS_PREFECT_HOME": str(home), "NEWS_PREFECT_PORT": str(_free_port()), "NEWS_PREFECT_DB": database}
    subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    exported = subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "env"], env=env, check=True, capture_output=True, text=True).stdout
    settings = {key: env[key] for key in ("NEWS_PREFECT_HOME", "NEWS_PREFECT_PORT", "NEWS_PREFECT_DB")}
    for line in exported.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        settings[key] = value.strip("'\"")
    return settings


class FakeProcess:
    """`python -m tests.support.fake_openai` in its own process (so it does not share this one's GIL)."""

    def __init__(self, latency: float) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_openai", "--port", str(self.port), "--latency", str(latency), "--model", "bench"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening" not in line:
            raise RuntimeError(f"fake server did not start: {line}{self.proc.stderr.read() if self.proc.stderr else ''}")
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> tuple[int, int]:
        """Stop it; (requests served, max in flight)."""
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        match = re.search(r"after (\d+) requests \(max in flight (\d+)\)", err or "")
        return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)


TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    tree = tree if tree is not None else _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICK  # utime, stime, cutime, cstime


def tree_cpu(pid: int) -> float:
    return sum(proc_cpu(p) for p in descendants(pid))


def server_cpu(home: Path) -> float:
    """CPU seconds of the Prefect server of `home` and, if it has one, its PostgreSQL cluster."""
    total = tree_cpu(int((home / "server.pid").read_text()))
    postmaster = home / "postgres" / "data" / "postmaster.pid"
    if postmaster.exists():
        total += tree_cpu(int(postmaster.read_text().split()[0]))
    return total


@dataclass
class Timing:
    label: str
    articles: int
    seconds: float
    requests: int

    @property
    def per_second(self) -> float:
        return self.articles / self.seconds

    @property
    def ms_per_article(self) -> float:
        return self.seconds / self.articles * 1000


def time_plain(input_dir: Path, output_dir: Path, base_url: str) -> float:
    from pipeline.llm import EndpointConfig
    from pipeline.run import RunConfig, run_batch

    config = RunConfig(input_dir, output_dir, EndpointConfig(base_url=base_url, model="bench"), rerun="all")
    started = time.perf_counter()
    manifest = run_batch(config)
    elapsed = time.perf_counter() - started
    assert not manifest["failures"], manifest["failures"][:3]
    return elapsed


def time_flow(input_dir: Path, output_dir: Path, base_url: str, **params: object) -> float:
    from flows.extract_flow import extract_articles

    started = time.perf_counter()
    manifest = extract_articles(input_dir=str(input_dir), output_dir=str(output_dir), base_url=base_url, model="bench", rerun="all", **params)
    elapsed = time.perf_counter() - started
    assert not manifest["failures"], manifest["failures"][:3]
    return elapsed


def measure_overhead(work: Path, articles: int, warmup: int, repeat: int) -> list[Timing]:
    from tests.support import write_articles

    inbox, warm = work / "articles", work / "warmup"
    write_articles(inbox, articles)
    write_articles(warm, warmup, start=articles)
    fake = FakeProcess(latency=0.0)
    try:
        time_plain(warm, work / "warm-plain", fake.base_url)  # spaCy, clients, imports
        time_flow(warm, work / "warm-flow", fake.base_url)  # Prefect client, result storage, events
    finally:
        fake.stop()
    runs = [
        ("plain pipeline (`run_batch`), one article at a time", lambda url: time_plain(inbox, work / "plain", url)),
        ("Prefect flow, `concurrency=1`", lambda url: time_flow(inbox, work / "flow", url)),
    ]
    timings = []
    for label, run in runs:
        best: Timing | None = None
        for attempt in range(repeat):
            fake = FakeProcess(latency=0.0)  # a fresh one per run: its request count is that run's
            try:
                seconds = run(fake.base_url)
            finally:
                requests, _ = fake.stop()
            print(f"  {label} (run {attempt + 1}): {seconds:.1f} s, {articles / seconds:.1f} articles/s, {requests} LLM requests", file=sys.stderr, flush=True)
            if best is None or seconds < best.seconds:
                best = Timing(label, articles, seconds, requests)
        assert best is not None
        timings.append(best)
    if len({t.requests for t in timings}) != 1:
        raise RuntimeError(f"the paths did not do the same work: {[(t.label, t.requests) for t in timings]}")
    return timings


LIMITED = {"llm_max_in_flight": 4, "llm_requests_per_minute": 1_000_000}
LIMIT_RUNS: tuple[tuple[str, dict[str, object]], ...] = (
    ("Prefect flow, `concurrency=1`, no limits configured", {}),
    ("Prefect flow, `concurrency=1`, endpoint concurrency limit + rate limit", LIMITED),
)


@dataclass
class LimitsCost:
    """The flow with and without limits: median run of each, and the median paired difference per article."""

    free: Timing
    limited: Timing
    extra_ms: list[float]  # per round: (limited - free) / articles, in ms
    extra_cpu_ms: list[float]  # per round, the same for CPU (this process, the server and its database)
    traffic: dict[str, float] = field(default_factory=dict)  # flows.llm_limits.limit_stats() over the limited runs
    load: list[float] = field(default_factory=list)  # 1-minute load average at the start of each round

    @property
    def median_extra_ms(self) -> float:
        return statistics.median(self.extra_ms)


def measure_limits(work: Path, articles: int, rounds: int) -> LimitsCost:
    """The flow with and without the endpoint's global concurrency + rate limits, against this process's server.

    After a warm-up of both (which also creates the limits), each round runs both on fresh output
    folders, in alternating order; on a machine shared with other work the paired difference of a
    round is far steadier than the difference of two separate best runs."""
    from tests.support import write_articles

    inbox, warm = work / "limits-articles", work / "limits-warmup"
    write_articles(inbox, articles, start=20_000)
    write_articles(warm, 10, start=30_000)
    fake = FakeProcess(latency=0.0)
    try:
        for n, (_, params) in enumerate(LIMIT_RUNS):
            time_flow(warm, work / f"limits-warm-{n}", fake.base_url, **params)
    finally:
        fake.stop()
    from flows.llm_limits import limit_stats, reset_limit_stats

    runs: dict[str, list[Timing]] = {label: [] for label, _ in LIMIT_RUNS}
    cpu: dict[str, list[float]] = {label: [] for label, _ in LIMIT_RUNS}
    traffic: Counter[str] = Counter()
    load: list[float] = []
    home = Path(os.environ["NEWS_PREFECT_HOME"])
    for round_ in range(rounds):
        load.append(os.getloadavg()[0])
        for label, params in LIMIT_RUNS[:: 1 if round_ % 2 == 0 else -1]:
            fake = FakeProcess(latency=0.0)
            reset_limit_stats()
            cpu0 = time.process_time() + server_cpu(home)
            try:
                seconds = time_flow(inbox, work / f"limits-{round_}-{len(runs[label])}-{bool(params)}", fake.base_url, **params)
            finally:
                requests, _ = fake.stop()
            cpu[label].append(time.process_time() + server_cpu(home) - cpu0)
            if params:
                traffic.update(limit_stats())
            print(f"  {label}: {seconds:.1f} s, {articles / seconds:.1f} articles/s, {requests} LLM requests, {cpu[label][-1]:.1f} s CPU", file=sys.stderr, flush=True)
            runs[label].append(Timing(label, articles, seconds, requests))
    free, limited = (runs[label] for label, _ in LIMIT_RUNS)
    extra = [(b.seconds - a.seconds) / articles * 1000 for a, b in zip(free, limited, strict=True)]
    extra_cpu = [(b - a) / articles * 1000 for a, b in zip(*cpu.values(), strict=True)]

    def median(timings: list[Timing]) -> Timing:
        return sorted(timings, key=lambda t: t.seconds)[len(timings) // 2]

    per_article = {name: value / (articles * rounds) for name, value in traffic.items()}
    return LimitsCost(median(free), median(limited), extra, extra_cpu, per_article, load)


def measure_in_flight(work: Path, concurrency: int, latency: float) -> list[tuple[str, int, int, float]]:
    from tests.support import write_articles
    from tests.support.fake_openai import FakeOpenAI

    inbox = work / "slow-articles"
    write_articles(inbox, concurrency * 3, start=5000)
    rows = []
    with FakeOpenAI(latency=latency) as fake:
        for label, expected, params in (
            (f"`concurrency={concurrency}`", concurrency, {}),
            (f"`concurrency={concurrency}`, `llm_max_in_flight={concurrency // 2}`", concurrency // 2, {"llm_max_in_flight": concurrency // 2}),
        ):
            fake.reset_counters()
            seconds = time_flow(inbox, work / f"slow-{expected}", fake.base_url, concurrency=concurrency, **params)
            rows.append((label, expected, fake.max_in_flight, seconds))
            print(f"  {label}: max in flight {fake.max_in_flight} (expected {expected}), {seconds:.1f} s", file=sys.stderr, flush=True)
    return rows


def render(
    timings: list[Timing],
    limits: dict[str, LimitsCost],
    in_flight: list[tuple[str, int, int, float]],
    *,
    latency: float,
    command: str,
) -> str:
    import prefect

    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Prefect {prefect.__version__}, against a local Prefect server "
        "(scripts/prefect-server.sh) and a zero-latency fake OpenAI-compatible server on 127.0.0.1 "
        "answering valid canned extractions; short articles (about 350 characters, 1-2 LLM questions each).",
    ]
    if timings:
        plain, flow = timings[0], timings[1]
        overhead = (flow.seconds - plain.seconds) / flow.articles * 1000
        lines += [
            "",
            f"{plain.articles:,} articles; each path is run twice on fresh output folders and the faster run counts. "
            "Both paths hold the article lock, extract with the same `pipeline` functions and write the same records; "
            "the flow adds the task runs, their state changes and logs sent to the server, the cache lookup and "
            "persisted result per article, and the artifacts. SQLite-backed server.",
            "",
            "| Path | Seconds | Articles/s | ms per article | LLM requests |",
            "|---|---:|---:|---:|---:|",
            *[f"| {t.label} | {t.seconds:.1f} | {t.per_second:.1f} | {t.ms_per_article:.1f} | {t.requests:,} |" for t in timings],
            "",
            f"**Prefect overhead: {overhead:.1f} ms per article** (flow vs plain, both one article at a time); "
            f"ratio {flow.seconds / plain.seconds:.2f}x. Target: at most {TARGET_MS:g} ms per article - "
            f"{'met' if overhead <= TARGET_MS else 'NOT met'}.",
        ]
    if limits:
        lines += [
            "",
            "Per-endpoint global limits (Prefect global concurrency limits, opt-in per endpoint: an article holds one "
            "lease-based in-flight slot, which a process hands to its next article and gives back when idle, after "
            "a few seconds and at the run's end; rate-limit tokens taken a few at a time, topped up in the background), "
            "by the server's database; "
            f"{next(iter(limits.values())).free.articles} articles; in each round both runs, in alternating order; the table "
            "shows the median run of each, the cost is the median of the rounds' paired differences:",
            "",
            "| Server database | Path | Seconds | Articles/s | ms per article | LLM requests |",
            "|---|---|---:|---:|---:|---:|",
        ]
        costs = []
        for database, cost in limits.items():
            lines += [f"| {database} | {t.label} | {t.seconds:.1f} | {t.per_second:.1f} | {t.ms_per_article:.1f} | {t.requests:,} |" for t in (cost.free, cost.limited)]
            rounds = ", ".join(f"{x:.0f}" for x in cost.extra_ms)
            t = cost.traffic
            round_trips = sum(t.get(k, 0) for k in ("slot_grants", "slot_denials", "slot_releases", "slot_renewals", "rate_requests", "rate_denials"))
            costs.append(
                f"{database}: **{cost.median_extra_ms:.0f} ms per article** (rounds: {rounds}; machine load {min(cost.load):.1f}-{max(cost.load):.1f}), "
                f"{statistics.median(cost.extra_cpu_ms):.0f} ms more CPU per article (client, server and database); "
                f"per article {round_trips:.2f} limit round trips to the server ({t.get('slot_grants', 0):.2f} slot grants, "
                f"{t.get('slot_releases', 0):.2f} releases, {t.get('rate_requests', 0):.2f} rate-limit requests; "
                f"{t.get('slot_reuses', 0):.2f} slots handed over in the process), {t.get('wait_s', 0) * 1000:.1f} ms waited for a slot or a token"
            )
        lines += [
            "",
            "Cost of the limits: " + "; ".join(costs) + f". Target with PostgreSQL: at most {TARGET_MS:g} ms per article. "
            "On SQLite, slot writes collide with the server's own writes of the run's events: the server answers 503 "
            "(`database is locked`) and the client retries. With no limits configured no slot is requested at all. "
            "Round trips and waits are counted in the flow's process (`flows.llm_limits.limit_stats`; the run's own "
            "set-up of the limits, a few calls per run, is not in them): the waits are on the articles' path, the round "
            "trips are made in the background. Under machine load, one round's paired difference varies by hundreds of "
            "milliseconds per article; the waits are the direct measure of what the limits add to an article.",
        ]
    if in_flight:
        lines += [
            "",
            f"Requests in flight against a fake server that takes {latency:g} s per answer (its max-in-flight gauge), "
            f"{in_flight[0][1] * 3} articles:",
            "",
            "| Run | Expected in flight | Measured max in flight | Seconds |",
            "|---|---:|---:|---:|",
            *[f"| {label} | {expected} | {measured} | {seconds:.1f} |" for label, expected, measured, seconds in in_flight],
        ]
    return "\n".join([*lines, ""])


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section `heading` of `path` (from it to the next `## ` heading) with `section`, keep everything else."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def limits_on(database: str, articles: int, repeat: int) -> LimitsCost:
    """The limits comparison in a child process with its own server on `database` (a clean Prefect client per server)."""
    cmd = [sys.executable, __file__, "--limits-worker", database, "--limits-articles", str(articles), "--limits-repeat", str(repeat)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    cost = json.loads(out.strip().splitlines()[-1])
    return LimitsCost(Timing(**cost["free"]), Timing(**cost["limited"]), cost["extra_ms"], cost["extra_cpu_ms"], cost["traffic"], cost["load"])


def with_server(database: str, body: Callable[[Path], T]) -> T:
    """Run `body(work)` in a temp folder with this process reporting to a fresh server on `database`."""
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user when we are root; it must reach the cluster folder
    settings = start_prefect_server(work / "prefect-home", database)
    os.environ.update(settings)  # before Prefect is imported: this process's flows report to that server
    os.environ["NEWS_RECORDS_ROOTS"] = str(work)
    for key in ("NEWS_LLM_API_KEY", "OPENAI_API_KEY", "NEWS_LLM_BASE_URL", "OPENAI_BASE_URL"):
        os.environ.pop(key, None)
    try:
        return body(work)
    finally:
        if "prefect.logging.handlers" in sys.modules:  # send the run logs still queued before the server goes
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=30)
        subprocess.run(["bash", str(REPO / "scripts" / "prefect-server.sh"), "stop"], env={**os.environ, **settings}, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000, help="articles for plain vs flow (0: skip that and the in-flight check)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2, help="runs per path; the fastest counts")
    parser.add_argument("--limits-articles", type=int, default=50, help="articles for the global-limits comparison (0: skip)")
    parser.add_argument("--limits-repeat", type=int, default=5, help="rounds of runs with and without limits (median of the paired differences)")
    parser.add_argument("--limits-databases", default="sqlite,postgres", help="server databases for the limits comparison")
    parser.add_argument("--limits-worker", choices=("sqlite", "postgres"), help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=8, help="N for the requests-in-flight check")
    parser.add_argument("--slow-latency", type=float, default=1.0, help="seconds per answer of the slow fake server")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md", help="file whose section is replaced")
    args = parser.parse_args(argv)

    if args.limits_worker:  # child of limits_on(): one pair of timings as JSON on the last line of stdout
        cost = with_server(args.limits_worker, lambda work: measure_limits(work, args.limits_articles, args.limits_repeat))
        print(json.dumps({"free": vars(cost.free), "limited": vars(cost.limited), "extra_ms": cost.extra_ms, "extra_cpu_ms": cost.extra_cpu_ms, "traffic": cost.traffic, "load": cost.load}))
        return 0

    timings: list[Timing] = []
    in_flight: list[tuple[str, int, int, float]] = []
    if args.articles:

        def overhead_and_in_flight(work: Path) -> None:
            print(f"Overhead: {args.articles} articles, plain vs flow ...", file=sys.stderr, flush=True)
            timings.extend(measure_overhead(work, args.articles, args.warmup, args.repeat))
            print(f"In flight: concurrency {args.concurrency} against a {args.slow_latency:g} s fake ...", file=sys.stderr, flush=True)
            in_flight.extend(measure_in_flight(work, args.concurrency, args.slow_latency))

        with_server("sqlite", overhead_and_in_flight)
    limits: dict[str, LimitsCost] = {}
    if args.limits_articles:
        for database in filter(None, args.limits_databases.split(",")):
            print(f"Limits on {database}: {args.limits_articles} articles with and without the endpoint's global limits ...", file=sys.stderr, flush=True)
            limits[database] = limits_on(database, args.limits_articles, args.limits_repeat)
    command = "python scripts/bench_overhead.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else "")
    section = render(timings, limits, in_flight, latency=args.slow_latency, command=command.strip())
    write_section(args.markdown, section)
    print("\n" + section)
    ok = all(expected == measured for _, expected, measured, _ in in_flight)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
