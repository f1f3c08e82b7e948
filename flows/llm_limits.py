"""Per-endpoint limits on LLM calls, held by Prefect global concurrency limits.

Every endpoint has two named limits on the Prefect server, shared by every run,
every served deployment and every worker that talks to it:

* ``llm:<endpoint>`` - how many requests may be in flight at once. A slot is
  held while one article is asked its questions (one request at a time, so at
  most one request in flight per slot) and released after its last answer:
  Prefect's lease-based slots cost a few server round trips each, so one per
  article rather than one per request;
* ``llm-rate:<endpoint>`` - requests per minute, a token bucket (slots decay
  at ``rpm / 60`` per second; at most one second's worth may burst). A process
  takes its tokens from the server a few at a time (a quarter of the bucket, at
  most RATE_BATCH_MAX) and spends them within RATE_TOKEN_TTL_S; tokens it does
  not spend by then are dropped, so the global rate is never exceeded.

``<endpoint>`` is the endpoint's host, port and path (never its credentials or
query), or ``embedded-<model>`` for the embedded llama.cpp server. A run's
``llm_max_in_flight`` / ``llm_requests_per_minute`` parameters create or update
them; left empty, the run uses whatever is configured on the server (UI:
Concurrency -> Global, or ``prefect gcl create llm:api.openai.com-443-v1 --limit 4``).
A limit that does not exist, or is switched off in the UI, costs nothing: no
slots are requested at all.

The slots are taken with the Prefect client's own API calls (increment with a
lease, release the lease; increment in rate-limit mode) over one client per
thread that lives as long as the process, rather than with Prefect's
`concurrency()` / `rate_limit()` helpers: those open a new API client and a
lease-renewal thread per slot, renew the lease at once and emit two events per
limit, which made a limited article cost hundreds of milliseconds more
(BENCHMARKS.md). Here a held lease is renewed by one background thread only
when it is held longer than a minute. Slot events are not emitted; the limits'
occupancy is on the server (UI: Concurrency -> Global) as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel

from pipeline.llm import EndpointConfig, StructuredLLM

if TYPE_CHECKING:
    import httpx
    from prefect.client.orchestration import SyncPrefectClient

T = TypeVar("T", bound=BaseModel)

CONCURRENCY_PREFIX = "llm:"
RATE_PREFIX = "llm-rate:"
LEASE_S = 300.0  # a slot's lease; the server frees the slot of a holder that died after this long
RENEW_EVERY_S = 60.0  # leases held longer than this are renewed (well within LEASE_S)
RATE_BATCH_MAX = 8  # rate-limit tokens taken per request to the server, at most
RATE_TOKEN_TTL_S = 1.0  # tokens not spent within this are dropped
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
    """Rate-limit tokens to take per request to the server: a quarter of the bucket, 1..RATE_BATCH_MAX."""
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


class _Clients:
    """One Prefect API client per thread and server, kept for the life of the process."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> SyncPrefectClient:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL

        clients: dict[str, SyncPrefectClient] = self._local.__dict__.setdefault("clients", {})
        url = PREFECT_API_URL.value() or ""
        if url not in clients:
            client = get_client(sync_client=True)
            client.__enter__()  # closed with the process: a client per slot would cost a connection per slot
            clients[url] = client
        return clients[url]


class _LeaseRenewer:
    """Renews the leases this process holds for longer than RENEW_EVERY_S, from one daemon thread."""

    def __init__(self) -> None:
        self._held: dict[UUID, float] = {}  # lease -> when it was taken or last renewed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, lease_id: UUID) -> None:
        with self._lock:
            self._held[lease_id] = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                context = contextvars.copy_context()  # the same Prefect settings (API URL) as the holder
                self._thread = threading.Thread(target=context.run, args=(self._run,), name="llm-limit-leases", daemon=True)
                self._thread.start()

    def drop(self, lease_id: UUID) -> None:
        with self._lock:
            self._held.pop(lease_id, None)

    def due(self, now: float) -> list[UUID]:
        with self._lock:
            due = [lease for lease, since in self._held.items() if now - since >= RENEW_EVERY_S]
            self._held.update(dict.fromkeys(due, now))
        return due

    def _run(self) -> None:
        while True:
            time.sleep(RENEW_EVERY_S / 4)
            for lease in self.due(time.monotonic()):
                try:
                    _CLIENTS.get().renew_concurrency_lease(lease_id=lease, lease_duration=LEASE_S)
                except Exception as error:  # noqa: BLE001 - a lost lease must not stop the run; the slot just frees early
                    log.warning("Could not renew the LLM slot lease %s: %s", lease, error)


class _RateTokens:
    """Rate-limit tokens this process took from the server and has not spent yet, per limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, float]] = {}  # limit -> (tokens, monotonic deadline)

    def spend(self, name: str) -> bool:
        """Spend one held token; False if none is left (or they expired)."""
        with self._lock:
            tokens, deadline = self._held.get(name, (0, 0.0))
            if tokens <= 0 or time.monotonic() >= deadline:
                return False
            self._held[name] = (tokens - 1, deadline)
            return True

    def add(self, name: str, tokens: int) -> None:
        with self._lock:
            held, deadline = self._held.get(name, (0, 0.0))
            now = time.monotonic()
            self._held[name] = ((held if now < deadline else 0) + tokens, now + RATE_TOKEN_TTL_S)


_CLIENTS = _Clients()
_LEASES = _LeaseRenewer()
_TOKENS = _RateTokens()


def _when_free(request: Callable[[], httpx.Response], given_up: threading.Event | None = None) -> httpx.Response | None:
    """Send a slot request until the server grants it, waiting as long as its Retry-After says.

    None if `given_up` is set while waiting (the slot is no longer needed)."""
    import httpx

    while True:
        try:
            return request()
        except httpx.HTTPStatusError as error:
            if error.response.status_code != LOCKED:
                raise
            if (given_up or threading.Event()).wait(float(error.response.headers.get("Retry-After", "1"))):
                return None


def _take_slot(name: str, given_up: threading.Event) -> UUID | None:
    """Take one slot of concurrency limit `name` with a lease (waiting until one is free).

    None if the limit is gone (deleted or switched off meanwhile) or the slot was given up while waiting."""
    client = _CLIENTS.get()
    response = _when_free(lambda: client.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency", lease_duration=LEASE_S), given_up)
    granted = response.json() if response is not None else {"limits": []}
    if not granted["limits"]:
        return None
    lease = UUID(granted["lease_id"])
    _LEASES.hold(lease)
    return lease


def _give_back(lease: UUID) -> None:
    import httpx

    _LEASES.drop(lease)
    try:
        _CLIENTS.get().release_concurrency_slots_with_lease(lease_id=lease)
    except httpx.HTTPError as error:  # the server frees it when the lease expires
        log.warning("Could not release the LLM slot lease %s (freed in at most %g s): %s", lease, LEASE_S, error)


# The slot of the article being processed in this context: requested when the article starts, so the
# round trip overlaps the article's parsing and rules; its first LLM request waits for the grant.
_SLOT: contextvars.ContextVar[Future[UUID | None] | None] = contextvars.ContextVar("llm_slot", default=None)
_REQUESTS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="llm-limit-slot")


@contextlib.contextmanager
def endpoint_slot(limits: LlmLimits) -> Iterator[None]:
    """Hold one of the endpoint's in-flight slots (if it has a concurrency limit) while an article is asked.

    The slot is requested at once, in the background; `GovernedLLM.ask` sends no request before it
    is granted, and it is released when the block ends (a request for it still waiting is given up)."""
    if not limits.concurrency:
        yield
        return
    given_up = threading.Event()
    slot = _REQUESTS.submit(contextvars.copy_context().run, _take_slot, limits.concurrency, given_up)
    token = _SLOT.set(slot)
    try:
        yield
    finally:
        _SLOT.reset(token)
        given_up.set()  # no request needs it any more: stop waiting for one (a slot already granted is released)
        try:
            lease = slot.result()
        except Exception:  # noqa: BLE001 - the request that needed it has already raised this
            lease = None
        if lease is not None:
            _give_back(lease)


def wait_for_slot() -> None:
    """Block until the current article's in-flight slot (if any) is granted; raise if it could not be taken."""
    slot = _SLOT.get()
    if slot is not None:
        slot.result()


def wait_for_rate(limits: LlmLimits) -> None:
    """Take one request from the endpoint's rate limit (if it has one), waiting as long as needed."""
    if not limits.rate or _TOKENS.spend(limits.rate):
        return
    client, names, batch = _CLIENTS.get(), [limits.rate], rate_batch(limits.requests_per_minute)
    _when_free(lambda: client.increment_concurrency_slots(names=names, slots=batch, mode="rate_limit"))
    _TOKENS.add(limits.rate, batch - 1)


class GovernedLLM(StructuredLLM):
    """The pipeline's structured-output client: each request within the article's slot and under the endpoint's rate limit."""

    def __init__(self, endpoint: EndpointConfig, limits: LlmLimits = NO_LIMITS) -> None:
        super().__init__(endpoint)
        self.limits = limits

    def ask(self, system: str, question: str, response_model: type[T], *, max_tokens: int = 256) -> T:
        wait_for_slot()
        wait_for_rate(self.limits)
        return super().ask(system, question, response_model, max_tokens=max_tokens)
