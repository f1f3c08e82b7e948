"""The LLM limits' client side (flows/llm_limits.py) against an in-memory model of Prefect's global concurrency limits.

Fast and without a server: `FakeLimits` answers the four client calls the module makes
(increment with a lease, release a lease, increment in rate-limit mode, renew) with the
server's semantics (a slot count that is never exceeded, a token bucket that decays, 423 +
Retry-After when nothing is free). Two copies of the module loaded side by side are two
processes: each has its own held slots and tokens, and they share only the server - so
the limits are checked over all processes, as on a real deployment. The same checks
against a real Prefect server are in tests/test_prefect_flow.py, tests/test_workers.py
and tests/test_postgres.py.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest

import flows.llm_limits as llm_limits
from flows.llm_limits import LlmLimits, rate_bucket

CONCURRENCY, RATE = "llm:fake", "llm-rate:fake"


class FakeLimits:
    """Prefect's concurrency_limits_v2 semantics, in memory, thread-safe."""

    def __init__(self, max_in_flight: int = 0, requests_per_minute: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.limit = max_in_flight
        self.leases: set[str] = set()
        self.max_active = 0
        self.bucket, self.decay = rate_bucket(requests_per_minute) if requests_per_minute else (0, 0.0)
        self.level, self.level_at = 0.0, time.monotonic()
        self.granted_tokens = 0
        self.calls: list[str] = []

    @staticmethod
    def locked(retry_after: float) -> httpx.HTTPStatusError:
        request = httpx.Request("POST", "http://fake/api/v2/concurrency_limits/increment")
        return httpx.HTTPStatusError("423", request=request, response=httpx.Response(423, headers={"Retry-After": str(retry_after)}, request=request))

    def increment_concurrency_slots_with_lease(self, *, names: list[str], slots: int, mode: str, lease_duration: float) -> httpx.Response:
        assert names == [CONCURRENCY] and slots == 1 and mode == "concurrency"
        with self.lock:
            self.calls.append("grant")
            if len(self.leases) + slots > self.limit:
                raise self.locked(0.02)
            lease = str(uuid.uuid4())
            self.leases.add(lease)
            self.max_active = max(self.max_active, len(self.leases))
        return httpx.Response(200, json={"lease_id": lease, "limits": [{"name": CONCURRENCY, "limit": self.limit}]})

    def release_concurrency_slots_with_lease(self, *, lease_id: uuid.UUID) -> None:
        with self.lock:
            self.calls.append("release")
            self.leases.remove(str(lease_id))  # a lease released twice would raise here

    def renew_concurrency_lease(self, *, lease_id: uuid.UUID, lease_duration: float) -> None:
        with self.lock:
            assert str(lease_id) in self.leases

    def increment_concurrency_slots(self, *, names: list[str], slots: int, mode: str) -> httpx.Response:
        assert names == [RATE] and mode == "rate_limit"
        with self.lock:
            self.calls.append("rate")
            if slots > self.bucket:
                raise AssertionError("more tokens asked at once than the bucket holds (the server answers 422)")
            now = time.monotonic()
            self.level, self.level_at = max(0.0, self.level - (now - self.level_at) * self.decay), now
            if self.level + slots > self.bucket:
                raise self.locked((self.level + slots - self.bucket) / self.decay)
            self.level += slots
            self.granted_tokens += slots
        return httpx.Response(200, json=[])


def load_process(name: str) -> ModuleType:
    """Another copy of flows/llm_limits.py: its own held slots, tokens and clients, as in another process."""
    spec = importlib.util.spec_from_file_location(name, llm_limits.__file__)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[callable]:
    """processes(server, n): n copies of the module, all talking to `server`."""
    made: list[ModuleType] = []

    def make(server: FakeLimits, n: int = 1) -> list[ModuleType]:
        for i in range(n):
            module = llm_limits if i == 0 else load_process(f"llm_limits_process_{i}")
            monkeypatch.setattr(module._CLIENTS, "get", lambda: server)
            monkeypatch.setattr(module, "_api_url", lambda: "http://fake/api")
            monkeypatch.setattr(module, "_POOL", module._SlotPool())  # nothing held from an earlier test
            monkeypatch.setattr(module, "_TOKENS", module._RateTokens())
            module.reset_limit_stats()
            made.append(module)
        return made[-n:]

    yield make
    for module in made:
        module.release_held_slots()
        if module is not llm_limits:
            sys.modules.pop(module.__name__, None)


class Endpoint:
    """Requests in flight (gauge) and when each was sent, over every process."""

    def __init__(self, latency: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.latency = latency
        self.in_flight = self.max_in_flight = 0
        self.sent: list[float] = []

    def request(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.sent.append(time.monotonic())
        time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1


def run_articles(module: ModuleType, limits: LlmLimits, endpoint: Endpoint, *, threads: int, articles: int, questions: int = 2) -> None:
    """`articles` articles over `threads` threads of one process, each asking `questions` questions as GovernedLLM.ask does."""
    todo = list(range(articles))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    todo.pop()
                with module.endpoint_slot(limits):
                    time.sleep(0.002)  # parsing and rules
                    for _ in range(questions):
                        module.wait_for_slot()
                        module.wait_for_rate(limits)
                        endpoint.request()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors


def run_together(modules: list[ModuleType], limits: LlmLimits, endpoint: Endpoint, *, threads: int, articles: int) -> None:
    """`run_articles` in every process (module copy) at the same time."""
    both = [threading.Thread(target=run_articles, args=(m, limits, endpoint), kwargs={"threads": threads, "articles": articles}) for m in modules]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()


def test_in_flight_never_exceeds_the_limit_over_processes_and_slots_are_handed_over(processes) -> None:  # noqa: ANN001
    server = FakeLimits(max_in_flight=3)
    a, b = processes(server, 2)
    limits = LlmLimits(concurrency=CONCURRENCY, max_in_flight=3)
    endpoint = Endpoint(latency=0.01)
    run_together([a, b], limits, endpoint, threads=4, articles=30)
    assert len(endpoint.sent) == 2 * 30 * 2
    assert endpoint.max_in_flight == 3, "the limit is 3 over both processes: reached, never exceeded"
    assert server.max_active <= 3
    stats = [m.limit_stats() for m in (a, b)]
    grants = sum(s.get("slot_grants", 0) for s in stats)
    reuses = sum(s.get("slot_reuses", 0) for s in stats)
    assert grants + reuses >= 60 and grants < 30, f"a finished article's slot should go to the next one: {stats}"
    for module in (a, b):
        module.release_held_slots()
    assert not server.leases, "every held slot goes back to the server at the end of a run"


def test_idle_and_long_held_slots_go_back_to_the_server(processes, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    server = FakeLimits(max_in_flight=2)
    (a,) = processes(server)
    monkeypatch.setattr(a, "SLOT_IDLE_S", 0.2)
    monkeypatch.setattr(a, "SLOT_HOLD_MAX_S", 0.5)
    limits = LlmLimits(concurrency=CONCURRENCY, max_in_flight=2)
    with a.endpoint_slot(limits):
        a.wait_for_slot()
    assert len(server.leases) == 1, "kept for the process's next article"
    deadline = time.monotonic() + 5
    while server.leases and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.leases, "an idle slot goes back after SLOT_IDLE_S"

    # Another process waiting for the only slot gets it although this one always has an article for it.
    server.limit = 1
    (b,) = processes(server)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            with a.endpoint_slot(limits):
                a.wait_for_slot()
                time.sleep(0.01)

    hog = threading.Thread(target=busy)
    hog.start()
    try:
        time.sleep(0.1)
        started = time.monotonic()
        with b.endpoint_slot(limits):
            b.wait_for_slot()
            waited = time.monotonic() - started
    finally:
        stop.set()
        hog.join()
    assert waited < 3.0, f"the other process waited {waited:.1f} s: a held slot must go back after SLOT_HOLD_MAX_S"


def test_an_article_that_ends_before_its_slot_is_granted_gives_the_request_up(processes) -> None:  # noqa: ANN001
    server = FakeLimits(max_in_flight=1)
    a, b = processes(server, 2)
    limits = LlmLimits(concurrency=CONCURRENCY, max_in_flight=1)
    with a.endpoint_slot(limits):
        a.wait_for_slot()  # a holds the only slot
        started = time.monotonic()
        with b.endpoint_slot(limits):
            pass  # b never asks: its request for a slot is given up, promptly
        assert time.monotonic() - started < 1.0
    a.release_held_slots()
    b.release_held_slots()
    assert not server.leases


def windows_within(sent: list[float], bucket: int, rate: float, slack_s: float) -> None:
    """Every window [t_i, t_j] of sent requests holds at most bucket + rate * (t_j - t_i + slack_s) of them."""
    sent = sorted(sent)
    for i in range(len(sent)):
        for j in range(i, len(sent)):
            allowed = bucket + rate * (sent[j] - sent[i] + slack_s)
            assert j - i + 1 <= allowed + 1e-6, f"{j - i + 1} requests in {sent[j] - sent[i]:.3f} s; at most {allowed:.1f} allowed"


def test_rate_never_exceeds_the_bucket_over_processes(processes) -> None:  # noqa: ANN001
    rpm = 1200.0  # 20 per second, a bucket of 20: tokens are taken in batches and topped up in the background
    server = FakeLimits(requests_per_minute=rpm)
    a, b = processes(server, 2)
    limits = LlmLimits(rate=RATE, requests_per_minute=rpm)
    bucket, rate = rate_bucket(rpm)
    endpoint = Endpoint()
    started = time.monotonic()
    run_together([a, b], limits, endpoint, threads=3, articles=25)
    assert len(endpoint.sent) == 100
    # A token is spent at most RATE_TOKEN_TTL_S after the request that took it: the burst can be that much larger.
    windows_within(endpoint.sent, bucket, rate, llm_limits.RATE_TOKEN_TTL_S)
    assert time.monotonic() - started >= (100 - bucket - rate * llm_limits.RATE_TOKEN_TTL_S) / rate
    stats = [m.limit_stats() for m in (a, b)]
    assert sum(s.get("rate_spent", 0) for s in stats) == 100 <= server.granted_tokens
    assert sum(s.get("rate_requests", 0) for s in stats) < 100, "tokens are taken several at a time"


def test_a_small_bucket_is_drawn_one_token_per_request_exactly(processes) -> None:  # noqa: ANN001
    rpm = 300.0  # 5 per second, a bucket of 5: no batches, no top-ups; Prefect's own semantics exactly
    server = FakeLimits(requests_per_minute=rpm)
    a, b = processes(server, 2)
    limits = LlmLimits(rate=RATE, requests_per_minute=rpm)
    bucket, rate = rate_bucket(rpm)
    endpoint = Endpoint()
    run_together([a, b], limits, endpoint, threads=2, articles=8)
    assert len(endpoint.sent) == 32
    windows_within(endpoint.sent, bucket, rate, 0.05)  # 50 ms: the time between the grant and the request here
    assert server.granted_tokens == 32

    # No token is taken ahead of a request: an article that has not asked yet holds none.
    time.sleep(llm_limits.RATE_TOKEN_TTL_S)  # anything left over has expired
    taken = a.limit_stats().get("rate_tokens", 0)
    with a.endpoint_slot(limits):
        time.sleep(0.2)
        assert a.limit_stats().get("rate_tokens", 0) == taken, "a token of a small bucket was taken before its request"


def test_tokens_expire_unspent(processes, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    rpm = 6000.0
    server = FakeLimits(requests_per_minute=rpm)
    (a,) = processes(server)
    monkeypatch.setattr(a, "RATE_TOKEN_TTL_S", 0.2)
    limits = LlmLimits(rate=RATE, requests_per_minute=rpm)
    for _ in range(3):
        a.wait_for_rate(limits)
    a.wait_for_rate(limits)
    taken = a.limit_stats()["rate_tokens"]
    time.sleep(0.3)
    a.wait_for_rate(limits)  # the tokens left over have expired: a new request to the server
    stats = a.limit_stats()
    assert stats["rate_tokens"] > taken and stats["rate_spent"] == 5
    assert stats["rate_spent"] + stats.get("rate_dropped", 0) <= stats["rate_tokens"]
