"""Per-endpoint limits on LLM calls, held by Prefect global concurrency limits.

Every endpoint has two named limits on the Prefect server, shared by every run,
every served deployment and every worker that talks to it:

* ``llm:<endpoint>`` - how many requests may be in flight at once. An article
  holds one of its lease-based slots while it is asked its questions (one
  request at a time, so at most one request in flight per slot);
* ``llm-rate:<endpoint>`` - requests per minute, a token bucket (slots decay
  at ``rpm / 60`` per second; at most one second's worth may burst).

``<endpoint>`` is the endpoint's host, port and path (never its credentials or
query), or ``embedded-<model>`` for the embedded llama.cpp server. A run's
``llm_max_in_flight`` / ``llm_requests_per_minute`` parameters create or update
them; left empty, the run uses whatever is configured on the server (UI:
Concurrency -> Global, or ``prefect gcl create llm:api.openai.com-443-v1 --limit 4``).
A limit that does not exist, or is switched off in the UI, costs nothing: no
slots are requested at all.

What a slot costs. The slots are taken with the Prefect client's own API calls
(increment with a lease, release the lease; increment in rate-limit mode) over
one client per thread that lives as long as the process, rather than with
Prefect's `concurrency()` / `rate_limit()` helpers (those open a new API client
and a lease-renewal thread per slot and emit two events per limit). Server round
trips are kept off an article's path:

* a process keeps the in-flight slots its articles hold: when an article is done,
  its slot goes to the next article of the process (a local hand-over, no round
  trip; an article of this process waiting for a slot gets it at once). A slot is
  given back to the server after SLOT_IDLE_S without an article, at the end of the
  run, and after SLOT_HOLD_MAX_S in any case, so that a process waiting for a slot
  can take it and a lowered limit applies within seconds (the server keeps no queue:
  a waiter asks again after the server's Retry-After, and whoever asks first after a
  release gets the slot, as with Prefect's own helpers). Give-backs happen in the
  background. A slot is never used by two articles at once, so the requests in
  flight over all processes never exceed the limit: the server's count of held
  slots does not;
* rate-limit tokens are taken from the server a few at a time (as many as the
  process spent in the last RATE_TOKEN_TTL_S, plus one; at most a quarter of the
  bucket) and, for buckets of 8 or more, topped up in the background when an
  article starts. A token not spent within RATE_TOKEN_TTL_S of the request that
  took it is dropped, so every request spends a token the server granted at most
  that long before: over any window of T seconds at most ``bucket + rate x
  (T + RATE_TOKEN_TTL_S)`` requests - the configured rate, with a burst at most
  RATE_TOKEN_TTL_S seconds' worth larger than Prefect's own. Buckets of fewer than
  8 tokens are drawn one token per request, when it is sent (Prefect's semantics exactly).

A held lease is renewed by one background thread only when it is held longer than
RENEW_EVERY_S; a process that dies loses its slots when their leases run out
(LEASE_S). Slot events are not emitted; the limits' occupancy is on the server
(UI: Concurrency -> Global) as before. `limit_stats()` counts the round trips and
the time articles waited on the limits.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel

from pipeline.llm import EndpointConfig, StructuredLLM

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

T = TypeVar("T", bound=BaseModel)

CONCURRENCY_PREFIX = "llm:"
RATE_PREFIX = "llm-rate:"
LEASE_S = 300.0  # a slot's lease; the server frees the slot of a holder that died after this long
RENEW_EVERY_S = 60.0  # leases held longer than this are renewed (well within LEASE_S)
SLOT_IDLE_S = 1.0  # a held slot no article of the process has used for this long goes back to the server
SLOT_HOLD_MAX_S = 5.0  # a held slot goes back to the server after this long in any case (other processes' turn)
RATE_BATCH_MAX = 64  # rate-limit tokens taken per request to the server, at most
RATE_TOKEN_TTL_S = 1.0  # tokens not spent within this (from the request that took them) are dropped
RATE_PREFETCH_S = 0.3  # when an article starts, tokens valid for less than this are topped up in the background
PREFETCH_MIN_BATCH = 2  # buckets whose batch would be smaller are drawn one token per request, when it is sent
LOCKED = 423  # the server's answer when no slot is free; Retry-After says when to ask again
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LlmLimits:
    """The global concurrency limits one run applies to its LLM calls (None: not limited)."""

    concurrency: str | None = None
    rate: str | None = None
    max_in_flight: int | None = None
    requests_per_minute: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.concurrency or self.rate)

    def describe(self) -> str:
        parts = []
        if self.concurrency:
            parts.append(f"`{self.concurrency}`: at most {self.max_in_flight} requests in flight")
        if self.rate:
            parts.append(f"`{self.rate}`: {self.requests_per_minute:g} requests per minute")
        return "; ".join(parts) or "none"


NO_LIMITS = LlmLimits()


def endpoint_key(endpoint: EndpointConfig | None, embedded_model: str | None = None) -> str:
    """A stable, credential-free name for an endpoint: host-port-path, or embedded-<model>."""
    if endpoint is None or endpoint.backend == "embedded-llama.cpp":
        raw = f"embedded-{embedded_model or (endpoint.model if endpoint else 'model')}"
    else:
        parts = urlsplit(endpoint.base_url or "https://api.openai.com/v1")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        raw = f"{parts.hostname or 'localhost'}-{port}{parts.path}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-").lower() or "endpoint"


def limit_names(key: str) -> tuple[str, str]:
    return CONCURRENCY_PREFIX + key, RATE_PREFIX + key


def rate_bucket(requests_per_minute: float) -> tuple[int, float]:
    """Slots and decay per second of a token bucket for `requests_per_minute`."""
    per_second = requests_per_minute / 60.0
    return max(1, math.ceil(per_second)), per_second


def rate_batch(requests_per_minute: float | None) -> int:
    """Most rate-limit tokens to take per request to the server: a quarter of the bucket, 1..RATE_BATCH_MAX."""
    if not requests_per_minute:
        return 1
    slots, _ = rate_bucket(requests_per_minute)
    return max(1, min(RATE_BATCH_MAX, slots // 4))


def configure_limits(key: str, *, max_in_flight: int | None, requests_per_minute: float | None) -> LlmLimits:
    """Create/update the endpoint's limits that the run sets; read the ones it leaves to the server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    concurrency_name, rate_name = limit_names(key)
    with get_client(sync_client=True) as client:
        if max_in_flight is not None:
            client.upsert_global_concurrency_limit_by_name(concurrency_name, max_in_flight)
        if requests_per_minute is not None:
            slots, decay = rate_bucket(requests_per_minute)
            client.upsert_global_concurrency_limit_by_name(rate_name, slots, slot_decay_per_second=decay)

        def active(name: str) -> Any:
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                return None
            return limit if limit.active else None

        conc, rate = active(concurrency_name), active(rate_name)
    if rate is not None and not rate.slot_decay_per_second:
        rate = None  # a limit without decay is not a rate limit; Prefect would refuse it
    return LlmLimits(
        concurrency=concurrency_name if conc is not None else None,
        rate=rate_name if rate is not None else None,
        max_in_flight=conc.limit if conc is not None else None,
        requests_per_minute=round(rate.slot_decay_per_second * 60, 3) if rate is not None else None,
    )


class _Stats:
    """Counts of this process's limit traffic (server round trips, slots reused, tokens) and the time articles waited."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._wait_s = 0.0

    def add(self, **counts: int) -> None:
        with self._lock:
            self._counts.update(counts)

    def waited(self, seconds: float) -> None:
        with self._lock:
            self._wait_s += seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self._counts, "wait_s": self._wait_s}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._wait_s = 0.0


STATS = _Stats()


def limit_stats() -> dict[str, float]:
    """This process's limit traffic so far: slot_grants / slot_denials / slot_releases / slot_renewals (server
    round trips), slot_reuses (slots handed from one article to the next without one), rate_requests /
    rate_denials (round trips), rate_tokens (taken), rate_spent, rate_dropped (expired unspent), and wait_s
    (seconds articles waited for a slot or a token, summed over articles)."""
    return STATS.snapshot()


def reset_limit_stats() -> None:
    STATS.reset()


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or ""


class _Clients:
    """One Prefect API client per thread and server, kept for the life of the process."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> SyncPrefectClient:
        from prefect.client.orchestration import get_client

        clients: dict[str, SyncPrefectClient] = self._local.__dict__.setdefault("clients", {})
        url = _api_url()
        if url not in clients:
            client = get_client(sync_client=True)
            client.__enter__()  # closed with the process: a client per slot would cost a connection per slot
            clients[url] = client
        return clients[url]


class _LeaseRenewer:
    """Renews the leases this process holds for longer than RENEW_EVERY_S, from one daemon thread."""

    def __init__(self) -> None:
        self._held: dict[UUID, tuple[float, contextvars.Context]] = {}  # lease -> (taken or last renewed, its server's context)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, lease_id: UUID, context: contextvars.Context) -> None:
        with self._lock:
            self._held[lease_id] = (time.monotonic(), context)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llm-limit-leases", daemon=True)
                self._thread.start()

    def drop(self, lease_id: UUID) -> None:
        with self._lock:
            self._held.pop(lease_id, None)

    def due(self, now: float) -> list[tuple[UUID, contextvars.Context]]:
        with self._lock:
            due = [(lease, context) for lease, (since, context) in self._held.items() if now - since >= RENEW_EVERY_S]
            self._held.update({lease: (now, context) for lease, context in due})
        return due

    def _run(self) -> None:
        while True:
            time.sleep(RENEW_EVERY_S / 4)
            for lease, context in self.due(time.monotonic()):
                try:
                    context.copy().run(lambda lease=lease: _CLIENTS.get().renew_concurrency_lease(lease_id=lease, lease_duration=LEASE_S))
                    STATS.add(slot_renewals=1)
                except Exception as error:  # noqa: BLE001 - a lost lease must not stop the run; the slot just frees early
                    log.warning("Could not renew the LLM slot lease %s: %s", lease, error)


_CLIENTS = _Clients()
_LEASES = _LeaseRenewer()
# Server round trips made off the articles' path: slot requests started when an article starts,
# give-backs, rate-limit top-ups.
_REQUESTS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="llm-limit-slot")


def _retry_after(error: Exception) -> float | None:
    """Seconds the server asks to wait if `error` is its "no slot free" answer (423), else None."""
    import httpx

    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code == LOCKED:
        return float(error.response.headers.get("Retry-After", "1"))
    return None


# --------------------------------------------------------------------------- in-flight slots


@dataclass
class _Held:
    """One slot of a concurrency limit this process holds on the server."""

    lease: UUID
    key: tuple[str, str]  # (API URL, limit name)
    context: contextvars.Context  # the Prefect settings it was taken under (its server), for the give-back
    taken: float  # monotonic time the server granted it
    idle_since: float = 0.0


class _SlotPool:
    """The in-flight slots this process holds and no article is using, per server and limit.

    An article takes an idle slot if there is one (no round trip), else asks the server; a finished
    article puts its slot back here for the next one. A slot is never in two articles' hands, so the
    process never has more requests in flight than it holds slots on the server."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._idle: dict[tuple[str, str], list[_Held]] = {}
        self._giving_back: set[Future[None]] = set()
        self._reaper: threading.Thread | None = None

    def reuse(self, key: tuple[str, str]) -> _Held | None:
        """An idle slot of `key`, if the process holds one (handed over without a round trip)."""
        stale: list[_Held] = []
        held = None
        with self._cond:
            idle = self._idle.get(key) or []
            now = time.monotonic()
            while idle and held is None:
                candidate = idle.pop()  # the most recently used one
                if now - candidate.taken < SLOT_HOLD_MAX_S:
                    held = candidate
                else:
                    stale.append(candidate)
        for old in stale:
            self._give_back(old)
        if held is not None:
            STATS.add(slot_reuses=1)
        return held

    def acquire(self, name: str, given_up: threading.Event) -> _Held | None:
        """A slot of limit `name`: an idle one of this process, else one from the server (waiting until one is free).

        None if the limit is gone (deleted or switched off meanwhile) or `given_up` is set while waiting."""
        key = (_api_url(), name)
        while not given_up.is_set():
            held = self.reuse(key)
            if held is not None:
                return held
            try:
                response = _CLIENTS.get().increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency", lease_duration=LEASE_S)
            except Exception as error:
                wait = _retry_after(error)
                if wait is None:
                    raise
                STATS.add(slot_denials=1)
                with self._cond:  # a slot this process puts back, or the server's Retry-After, whichever comes first
                    self._cond.wait_for(lambda: given_up.is_set() or bool(self._idle.get(key)), timeout=wait)
                continue
            STATS.add(slot_grants=1)
            granted = response.json()
            if not granted["limits"]:
                return None
            held = _Held(UUID(granted["lease_id"]), key, contextvars.copy_context(), time.monotonic())
            _LEASES.hold(held.lease, held.context)
            return held
        return None

    def put_back(self, held: _Held) -> None:
        """An article is done with `held`: keep it for the next article, or give it back if held long enough."""
        now = time.monotonic()
        if now - held.taken >= SLOT_HOLD_MAX_S:
            self._give_back(held)
            return
        with self._cond:
            held.idle_since = now
            self._idle.setdefault(held.key, []).append(held)
            self._cond.notify_all()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="llm-limit-idle", daemon=True)
                self._reaper.start()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _reap(self) -> None:
        """Give back slots idle for SLOT_IDLE_S (or held SLOT_HOLD_MAX_S); ends when none is idle."""
        while True:
            time.sleep(SLOT_IDLE_S / 4)
            due: list[_Held] = []
            with self._cond:
                now = time.monotonic()
                for idle in self._idle.values():
                    keep = []
                    for held in idle:
                        fresh = now - held.idle_since < SLOT_IDLE_S and now - held.taken < SLOT_HOLD_MAX_S
                        (keep if fresh else due).append(held)
                    idle[:] = keep
                done = not any(self._idle.values())
                if done:
                    self._reaper = None  # the next put_back starts another
            for held in due:
                self._give_back(held)
            if done:
                return

    def _give_back(self, held: _Held) -> None:
        """Release `held` on the server, in the background."""
        future = _REQUESTS.submit(held.context.copy().run, _release, held.lease)
        with self._cond:
            self._giving_back.add(future)
        future.add_done_callback(self._given_back)

    def _given_back(self, future: Future[None]) -> None:
        with self._cond:
            self._giving_back.discard(future)

    def release_idle(self, timeout: float = 30.0) -> None:
        """Give every idle slot back to the server and wait for the give-backs (the end of a run, the process's exit)."""
        with self._cond:
            idle = [held for slots in self._idle.values() for held in slots]
            self._idle.clear()
        for held in idle:
            self._give_back(held)
        with self._cond:
            pending = set(self._giving_back)
        wait_all(pending, timeout=timeout)


def _release(lease: UUID) -> None:
    import httpx

    _LEASES.drop(lease)
    try:
        _CLIENTS.get().release_concurrency_slots_with_lease(lease_id=lease)
        STATS.add(slot_releases=1)
    except httpx.HTTPError as error:  # the server frees it when the lease expires
        log.warning("Could not release the LLM slot lease %s (freed in at most %g s): %s", lease, LEASE_S, error)


_POOL = _SlotPool()


def release_held_slots(timeout: float = 30.0) -> None:
    """Give back to the server every in-flight slot this process holds and no article is using (a run's end)."""
    _POOL.release_idle(timeout)


def _release_at_exit() -> None:
    with contextlib.suppress(RuntimeError):  # the executor already shut down: the leases run out on the server
        release_held_slots(10.0)


atexit.register(_release_at_exit)


# --------------------------------------------------------------------------- rate-limit tokens


@dataclass
class _Bucket:
    """The rate-limit tokens this process took for one limit and has not spent yet."""

    batches: deque[list[float]] = field(default_factory=deque)  # [deadline, tokens left], oldest first
    spent: deque[float] = field(default_factory=deque)  # when tokens were spent (the last RATE_TOKEN_TTL_S)
    fetching: Future[None] | None = None


class _RateTokens:
    """Rate-limit tokens taken from the server and not spent yet, per server and limit.

    A batch of tokens expires RATE_TOKEN_TTL_S after the request that took it was sent (so no token is
    spent later than that after the server granted it); one request to the server at a time per limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _bucket(self, key: tuple[str, str], now: float) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket())
        while bucket.batches and bucket.batches[0][0] <= now:
            STATS.add(rate_dropped=int(bucket.batches.popleft()[1]))
        while bucket.spent and bucket.spent[0] <= now - RATE_TOKEN_TTL_S:
            bucket.spent.popleft()
        return bucket

    def spend(self, key: tuple[str, str]) -> bool:
        """Spend one held token; False if none is left (or they expired)."""
        with self._lock:
            now = time.monotonic()
            bucket = self._bucket(key, now)
            if not bucket.batches:
                return False
            first = bucket.batches[0]
            first[1] -= 1
            if first[1] <= 0:
                bucket.batches.popleft()
            bucket.spent.append(now)
        STATS.add(rate_spent=1)
        return True

    def fetch(self, limits: LlmLimits, *, background: bool) -> None:
        """Take a batch of tokens from the server: in the background (if none is being taken), or now (joining
        a request already under way)."""
        assert limits.rate is not None
        key, name, most = (_api_url(), limits.rate), limits.rate, rate_batch(limits.requests_per_minute)
        with self._lock:
            now = time.monotonic()
            bucket = self._bucket(key, now)
            if background:
                valid = sum(int(tokens) for deadline, tokens in bucket.batches if deadline > now + RATE_PREFETCH_S)
                if valid or bucket.fetching is not None or most < PREFETCH_MIN_BATCH:
                    return
            running = bucket.fetching
            if running is None:
                running = bucket.fetching = Future()
                batch = max(1, min(most, len(bucket.spent) + 1))  # what the process spent in the last TTL, plus one
                mine = True
            else:
                mine = False
        if not mine:
            with contextlib.suppress(Exception):  # a failed top-up: the caller asks again itself
                running.result()
            return
        if background:
            _REQUESTS.submit(contextvars.copy_context().run, self._take, key, name, batch, running)
        else:
            self._take(key, name, batch, running)
            running.result()

    def _take(self, key: tuple[str, str], name: str, batch: int, done: Future[None]) -> None:
        try:
            client = _CLIENTS.get()
            while True:
                sent = time.monotonic()
                try:
                    client.increment_concurrency_slots(names=[name], slots=batch, mode="rate_limit")
                    break
                except Exception as error:
                    wait = _retry_after(error)
                    if wait is None:
                        raise
                    STATS.add(rate_denials=1)
                    time.sleep(wait)
            STATS.add(rate_requests=1, rate_tokens=batch)
            with self._lock:
                self._buckets[key].batches.append([sent + RATE_TOKEN_TTL_S, batch])
        except BaseException as error:
            done.set_exception(error)
        else:
            done.set_result(None)
        finally:
            with self._lock:
                bucket = self._buckets[key]
                if bucket.fetching is done:
                    bucket.fetching = None


_TOKENS = _RateTokens()


# --------------------------------------------------------------------------- what the flow and the client call


# The slot of the article being processed in this context: an idle one of the process at once, or
# requested from the server when the article starts, so the round trip overlaps the article's parsing
# and rules; its first LLM request waits for the grant.
_SLOT: contextvars.ContextVar[Future[_Held | None] | None] = contextvars.ContextVar("llm_slot", default=None)


@contextlib.contextmanager
def endpoint_slot(limits: LlmLimits) -> Iterator[None]:
    """Hold one of the endpoint's in-flight slots (if it has a concurrency limit) while an article is asked.

    The slot is the process's idle one, else requested at once, in the background; `GovernedLLM.ask`
    sends no request before it is granted. When the block ends it goes back to the process (a request
    for it still waiting is given up). Rate-limit tokens are topped up in the background here too."""
    if limits.rate:
        _TOKENS.fetch(limits, background=True)
    if not limits.concurrency:
        yield
        return
    given_up = threading.Event()
    held = _POOL.reuse((_api_url(), limits.concurrency))
    if held is not None:
        slot: Future[_Held | None] = Future()
        slot.set_result(held)
    else:
        slot = _REQUESTS.submit(contextvars.copy_context().run, _POOL.acquire, limits.concurrency, given_up)
    token = _SLOT.set(slot)
    try:
        yield
    finally:
        _SLOT.reset(token)
        given_up.set()  # no request needs it any more: stop waiting for one (a slot already granted goes back)
        _POOL.wake()
        try:
            granted = slot.result()
        except Exception:  # noqa: BLE001 - the request that needed it has already raised this
            granted = None
        if granted is not None:
            _POOL.put_back(granted)


def wait_for_slot() -> None:
    """Block until the current article's in-flight slot (if any) is granted; raise if it could not be taken."""
    slot = _SLOT.get()
    if slot is not None and not slot.done():
        started = time.perf_counter()
        try:
            slot.result()
        finally:
            STATS.waited(time.perf_counter() - started)
    elif slot is not None:
        slot.result()


def wait_for_rate(limits: LlmLimits) -> None:
    """Take one request from the endpoint's rate limit (if it has one), waiting as long as needed."""
    if not limits.rate:
        return
    key = (_api_url(), limits.rate)
    if _TOKENS.spend(key):
        return
    started = time.perf_counter()
    try:
        while not _TOKENS.spend(key):
            _TOKENS.fetch(limits, background=False)
    finally:
        STATS.waited(time.perf_counter() - started)


class GovernedLLM(StructuredLLM):
    """The pipeline's structured-output client: each request within the article's slot and under the endpoint's rate limit."""

    def __init__(self, endpoint: EndpointConfig, limits: LlmLimits = NO_LIMITS) -> None:
        super().__init__(endpoint)
        self.limits = limits

    def ask(self, system: str, question: str, response_model: type[T], *, max_tokens: int = 256) -> T:
        wait_for_slot()
        wait_for_rate(self.limits)
        return super().ask(system, question, response_model, max_tokens=max_tokens)
