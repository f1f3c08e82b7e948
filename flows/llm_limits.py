"""Per-endpoint limits on LLM calls, held by Prefect global concurrency limits.

Every endpoint has two named limits on the Prefect server, shared by every run,
every served deployment and every worker that talks to it:

* ``llm:<endpoint>`` - how many requests may be in flight at once. A slot is
  held while one article is asked its questions (one request at a time, so at
  most one request in flight per slot) and released after its last answer:
  Prefect's lease-based slots cost a few server round trips each, so one per
  article rather than one per request;
* ``llm-rate:<endpoint>`` - requests per minute, a token bucket (slots decay
  at ``rpm / 60`` per second; at most one second's worth may burst).

``<endpoint>`` is the endpoint's host, port and path (never its credentials or
query), or ``embedded-<model>`` for the embedded llama.cpp server. A run's
``llm_max_in_flight`` / ``llm_requests_per_minute`` parameters create or update
them; left empty, the run uses whatever is configured on the server (UI:
Concurrency -> Global, or ``prefect gcl create llm:api.openai.com-443-v1 --limit 4``).
A limit that does not exist, or is switched off in the UI, costs nothing: no
slots are requested at all.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from pipeline.llm import EndpointConfig, StructuredLLM

T = TypeVar("T", bound=BaseModel)

CONCURRENCY_PREFIX = "llm:"
RATE_PREFIX = "llm-rate:"


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


@contextlib.contextmanager
def endpoint_slot(limits: LlmLimits) -> Iterator[None]:
    """Hold one of the endpoint's in-flight slots (if it has a concurrency limit) while an article is asked."""
    if limits.concurrency:
        from prefect.concurrency.sync import concurrency

        with concurrency(limits.concurrency, occupy=1):
            yield
    else:
        yield


def wait_for_rate(limits: LlmLimits) -> None:
    """Take one request from the endpoint's rate limit (if it has one), waiting as long as needed."""
    if limits.rate:
        from prefect.concurrency.sync import rate_limit

        rate_limit(limits.rate, occupy=1)


class GovernedLLM(StructuredLLM):
    """The pipeline's structured-output client, each request under the endpoint's Prefect rate limit."""

    def __init__(self, endpoint: EndpointConfig, limits: LlmLimits = NO_LIMITS) -> None:
        super().__init__(endpoint)
        self.limits = limits

    def ask(self, system: str, question: str, response_model: type[T], *, max_tokens: int = 256) -> T:
        wait_for_rate(self.limits)
        return super().ask(system, question, response_model, max_tokens=max_tokens)
