"""One structured-output client for every OpenAI-compatible endpoint.

The embedded llama.cpp server, OpenAI, Ollama and vLLM are all reached the
same way: the `openai` client wrapped by `instructor`, which validates each
answer against a Pydantic model and re-asks with the validation errors.

Failure handling, in layers:

* Transport (HTTP 408/409/429/5xx, timeouts, dropped connections): retried by
  the `openai` client itself (`EndpointConfig.transport_retries`), with
  exponential backoff and jitter, honouring `Retry-After` / `retry-after-ms`
  up to 120 s. These errors are never shown to the model: a request that
  failed in transport is simply sent again, unchanged. When the retries are
  spent, `EndpointUnavailable` is raised.
* Validation (the answer is not JSON, or breaks the response model, e.g. an
  option that does not exist): re-asked by instructor with the validation
  errors, at most `EndpointConfig.max_retries` times; then `InvalidAnswer`.
* Truncation (`finish_reason: "length"`): asked again with twice the
  `max_tokens`, up to four times the original; then `TruncatedAnswer`.
* Cost: every completion's tokens are counted, re-asks included
  (`UsageMeter`); once an article's total reaches
  `EndpointConfig.token_budget`, no further question or re-ask is sent and
  `TokenBudgetExhausted` is raised.
* Size: the prompt sent to the model is capped at
  `EndpointConfig.max_prompt_chars` characters (the article part is cut,
  with a marker); rules always see the whole article.

The API key is held as a `SecretStr`: it prints as '**********' in reprs,
logs, `dataclasses.asdict` and Prefect parameters, and `redact` strips it
(and anything shaped like a key) from error text before it is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import instructor
import openai
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from pipeline.write import REDACTED, redact, register_secret  # noqa: F401 - re-exported
from schemas.records import TokenUsage

try:
    from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
except ImportError:  # pragma: no cover - older instructor layout
    from instructor.exceptions import IncompleteOutputException, InstructorRetryException  # type: ignore[no-redef]

try:
    from instructor.v2.core.errors import ResponseParsingError

    _PARSE_ERRORS: tuple[type[BaseException], ...] = (ValidationError, json.JSONDecodeError, ResponseParsingError)
except ImportError:  # pragma: no cover
    _PARSE_ERRORS = (ValidationError, json.JSONDecodeError)

T = TypeVar("T", bound=BaseModel)
# instructor modes by name: "tools" (grammar-constrained on llama.cpp), "json" (JSON-object response format),
# "md_json" (JSON written in a fenced block, no response format: no grammar to sample on llama.cpp).
_MODES = {"tools": instructor.Mode.TOOLS, "json": instructor.Mode.JSON, "md_json": instructor.Mode.MD_JSON}
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_TRANSPORT_RETRIES = 3
DEFAULT_TOKEN_BUDGET = 300_000  # per article, all questions and re-asks together
DEFAULT_MAX_PROMPT_CHARS = 12_000  # about 3k tokens: fits the embedded model's 4k context with room to answer
MAX_TOKENS_GROWTH = 4  # a truncated answer is re-asked with up to 4x its max_tokens

_NOT_A_SECRET = "not-needed"


def _env_number(name: str, kind: type, default: Any) -> Any:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a valid {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"environment variable {name} must be greater than zero, got {raw!r}")
    return value


@dataclass(frozen=True)
class EndpointConfig:
    """Where the model lives. `api_key` is a `SecretStr`: never logged or written anywhere."""

    base_url: str | None
    model: str
    api_key: SecretStr | str = field(default=_NOT_A_SECRET, repr=False)
    backend: str = "openai-compatible"
    mode: str = "tools"  # instructor mode: "tools" (grammar-constrained on llama.cpp) or "json"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 2  # instructor re-asks after a validation failure
    transport_retries: int = DEFAULT_TRANSPORT_RETRIES  # openai-client retries of 408/409/429/5xx, timeouts, dropped connections
    token_budget: int | None = DEFAULT_TOKEN_BUDGET  # per article; None: unlimited
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        key = self.api_key if isinstance(self.api_key, SecretStr) else SecretStr(str(self.api_key))
        object.__setattr__(self, "api_key", key)
        value = key.get_secret_value()
        if value and value != _NOT_A_SECRET:
            register_secret(value)

    def secret_key(self) -> str:
        assert isinstance(self.api_key, SecretStr)
        return self.api_key.get_secret_value()

    @classmethod
    def from_env(cls, *, base_url: str | None = None, model: str | None = None) -> EndpointConfig | None:
        """A remote endpoint from arguments or NEWS_LLM_* / OPENAI_* variables; None means embedded.

        Tuning variables: NEWS_LLM_MODE, NEWS_LLM_TIMEOUT_S, NEWS_LLM_TOKEN_BUDGET (tokens per
        article), NEWS_LLM_MAX_PROMPT_CHARS, NEWS_LLM_MAX_RETRIES (validation re-asks),
        NEWS_LLM_TRANSPORT_RETRIES.
        """
        base_url = base_url or os.environ.get("NEWS_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        api_key = os.environ.get("NEWS_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        model = model or os.environ.get("NEWS_LLM_MODEL")
        if not base_url and not api_key:
            return None
        return cls(
            base_url=base_url,
            model=model or "gpt-4o-mini",
            api_key=api_key or _NOT_A_SECRET,
            backend="openai" if not base_url else "openai-compatible",
            mode=os.environ.get("NEWS_LLM_MODE", "tools"),
            timeout_s=_env_number("NEWS_LLM_TIMEOUT_S", float, DEFAULT_TIMEOUT_S),
            max_retries=_env_number("NEWS_LLM_MAX_RETRIES", int, 2),
            transport_retries=_env_number("NEWS_LLM_TRANSPORT_RETRIES", int, DEFAULT_TRANSPORT_RETRIES),
            token_budget=_env_number("NEWS_LLM_TOKEN_BUDGET", int, DEFAULT_TOKEN_BUDGET),
            max_prompt_chars=_env_number("NEWS_LLM_MAX_PROMPT_CHARS", int, DEFAULT_MAX_PROMPT_CHARS),
        )


# --------------------------------------------------------------------------- errors


class LLMError(RuntimeError):
    """An article's question could not be answered; the message is fit for a failure record."""

    stage = "extract"


class EndpointUnavailable(LLMError):
    """Transport failures (HTTP errors, timeouts, dropped connections) outlasted the retries.

    Transient by nature: worth retrying the article later (`transient` is True);
    when caused by an openai error, that error is its `__cause__`.
    """

    transient = True


class InvalidAnswer(LLMError):
    """The model's answers kept failing validation after the allowed re-asks."""

    stage = "validate"


class TruncatedAnswer(InvalidAnswer):
    """The answer was cut off by max_tokens even after asking with more room."""


class TokenBudgetExhausted(LLMError):
    """The article used up its token budget; no more questions or re-asks are sent."""


# --------------------------------------------------------------------------- usage


@dataclass
class UsageMeter:
    """Counts tokens of every completion, retries included."""

    usage: TokenUsage = field(default_factory=TokenUsage)

    @property
    def total_tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    def on_response(self, response: Any) -> None:
        u = getattr(response, "usage", None)
        self.usage = self.usage.add(
            TokenUsage(
                prompt_tokens=getattr(u, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(u, "completion_tokens", 0) or 0,
                calls=1,
            )
        )

    def on_parse_error(self, error: Exception) -> None:
        self.usage = self.usage.model_copy(update={"retries": self.usage.retries + 1})


class _OverBudget(stop_base):
    """Stop instructor's re-asks as soon as the article's token budget is spent."""

    def __init__(self, llm: StructuredLLM) -> None:
        self.llm = llm

    def __call__(self, retry_state: Any) -> bool:
        return self.llm.over_budget()


def _summarise_validation(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            return "answer is not valid JSON (" + "; ".join(e.get("msg", "") for e in error.errors()[:2]) + ")"
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'answer'}: {e.get('msg', '')}" for e in error.errors()[:4]]
        more = f" (+{error.error_count() - 4} more)" if error.error_count() > 4 else ""
        return "; ".join(parts) + more
    if isinstance(error, json.JSONDecodeError):
        return f"answer is not valid JSON ({error.msg} at char {error.pos})"
    return f"{type(error).__name__}: {error}"


class StructuredLLM:
    """Ask an endpoint for a Pydantic object; track tokens and attempts across retries.

    One instance per article: its meter and budget are the article's.
    """

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint
        self.http_attempts = 0  # HTTP requests sent, transport retries included
        self.truncated_prompts = 0
        self._http = openai.DefaultHttpxClient(event_hooks={"request": [self._on_request]})
        raw = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.secret_key(),
            timeout=endpoint.timeout_s,
            max_retries=endpoint.transport_retries,  # backoff + jitter, honours Retry-After
            http_client=self._http,
        )
        self._raw = raw
        self._clients: dict[str, Any] = {}
        self._mode = endpoint.mode
        self._timeout_s: float | None = None  # per-request override of endpoint.timeout_s
        self.meter = UsageMeter()
        self.last_raw_output: str | None = None
        self.last_error: str | None = None
        self._last_failure_in_transport = False  # the last failed attempt got no parseable HTTP answer

    @property
    def _client(self) -> Any:
        """The instructor client of the current mode (one per mode, created on first use, same hooks)."""
        if self._mode not in self._clients:
            client = instructor.from_openai(self._raw, mode=_MODES.get(self._mode, instructor.Mode.TOOLS))
            client.on("completion:response", self._on_response)
            client.on("completion:error", self._on_completion_error)
            client.on("parse:error", self._on_parse_error)
            self._clients[self._mode] = client
        return self._clients[self._mode]

    @contextlib.contextmanager
    def using(self, *, mode: str | None = None, timeout_s: float | None = None) -> Iterator[None]:
        """Ask in another instructor mode, or with a longer per-request timeout, meanwhile.

        "md_json": the model writes JSON freely, validated after (for a nested schema whose grammar
        llama.cpp samples at seconds a token on a busy CPU). A longer timeout for answers that take minutes on a busy CPU: a request
        that times out is sent again and queues behind itself on a single-slot local server.
        """
        previous = self._mode, self._timeout_s
        self._mode, self._timeout_s = mode or self._mode, timeout_s or self._timeout_s
        try:
            yield
        finally:
            self._mode, self._timeout_s = previous

    # ---- hooks

    def _on_request(self, request: Any) -> None:
        self.http_attempts += 1

    def _on_response(self, response: Any) -> None:
        self.meter.on_response(response)
        try:
            message = response.choices[0].message
            calls = message.tool_calls or []
            self.last_raw_output = calls[0].function.arguments if calls else message.content
        except (AttributeError, IndexError, TypeError):
            self.last_raw_output = None

    def _on_completion_error(self, error: Exception) -> None:
        # The request itself failed (after the client's transport retries); the model never answered.
        self._last_failure_in_transport = True

    def _on_parse_error(self, error: Exception) -> None:
        self._last_failure_in_transport = False
        self.meter.on_parse_error(error)
        self.last_error = _summarise_validation(error)

    # ---- budget and size

    def over_budget(self) -> bool:
        budget = self.endpoint.token_budget
        return budget is not None and self.meter.total_tokens >= budget

    def _budget_error(self, last: str | None = None) -> TokenBudgetExhausted:
        u = self.meter.usage
        detail = f"; last validation error: {last}" if last else ""
        return TokenBudgetExhausted(
            f"token budget exhausted: {self.meter.total_tokens:,} tokens used of the {self.endpoint.token_budget:,}-token "
            f"budget for this article ({u.calls} model answers, {u.retries} re-asks); no further questions sent{detail}"
        )

    def fit_prompt(self, system: str, question: str) -> tuple[str, str]:
        """System and question cut to `max_prompt_chars` together (the article part is cut first)."""
        limit = self.endpoint.max_prompt_chars
        if len(system) + len(question) <= limit:
            return system, question
        self.truncated_prompts += 1
        if self.truncated_prompts == 1:
            log.warning("Prompt of %d characters cut to the %d-character limit (NEWS_LLM_MAX_PROMPT_CHARS)", len(system) + len(question), limit)
        if len(question) > limit // 2:
            question = question[: limit // 2]
        closing = "\n>>>" if system.rstrip().endswith(">>>") else ""
        marker = "\n[... article cut here to fit the model's input limit ...]" + closing
        keep = max(0, limit - len(question) - len(marker))
        return system[:keep] + marker, question

    # ---- asking

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(max(self.endpoint.max_retries, 0) + 1) | _OverBudget(self),
            retry=retry_if_exception_type(_PARSE_ERRORS),
            reraise=True,
        )

    def ask(self, system: str, question: str, response_model: type[T], *, max_tokens: int = 256) -> T:
        system, question = self.fit_prompt(system, question)
        tokens = max_tokens
        while True:
            if self.over_budget():
                raise self._budget_error(self.last_error)
            self._last_failure_in_transport = False
            try:
                return self._client.chat.completions.create(
                    model=self.endpoint.model,
                    response_model=response_model,
                    max_retries=self._retrying(),
                    temperature=0,
                    max_tokens=tokens,
                    **({"timeout": self._timeout_s} if self._timeout_s else {}),
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": question},
                    ],
                )
            except IncompleteOutputException:
                self.last_error = f"answer cut off at max_tokens={tokens} (finish_reason 'length')"
                if tokens * 2 > max_tokens * MAX_TOKENS_GROWTH:
                    raise TruncatedAnswer(
                        f"model answer truncated (finish_reason 'length') even with max_tokens={tokens}, "
                        f"{MAX_TOKENS_GROWTH}x the usual {max_tokens}"
                    ) from None
                log.info("Answer truncated at max_tokens=%d; asking again with %d", tokens, tokens * 2)
                tokens *= 2
            except InstructorRetryException as error:
                translated = self._translate(error)
                cause = error.__cause__
                # Transport errors keep their openai cause (retry policies look for it); others stand alone.
                raise translated from (cause if isinstance(translated, EndpointUnavailable) and isinstance(cause, openai.APIError) else None)
            except openai.APIError as error:
                raise self._transport_error(error) from error

    def _transport_error(self, error: BaseException) -> EndpointUnavailable:
        tries = f"after {self.http_attempts} HTTP attempt(s) with backoff"
        if isinstance(error, openai.APITimeoutError):
            return EndpointUnavailable(f"endpoint timed out (no answer within {self.endpoint.timeout_s:g} s) {tries}")
        if isinstance(error, openai.APIConnectionError):
            return EndpointUnavailable(f"could not reach the endpoint or the connection was dropped {tries}")
        if isinstance(error, openai.APIStatusError):
            message = redact(str(getattr(error, "message", "") or ""))[:300]
            return EndpointUnavailable(f"endpoint answered HTTP {error.status_code} {tries}: {message}")
        return EndpointUnavailable(f"{type(error).__name__}: {redact(str(error))[:300]} ({tries})")

    def _translate(self, error: InstructorRetryException) -> LLMError:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, openai.APIError):
            return self._transport_error(cause)
        if isinstance(cause, _PARSE_ERRORS) and self._last_failure_in_transport:
            # e.g. an HTTP 200 whose body is not JSON: resent unchanged, never shown to the model as its mistake.
            detail = f"; {cause.msg} at char {cause.pos}" if isinstance(cause, json.JSONDecodeError) else ""
            return EndpointUnavailable(
                f"endpoint returned an unreadable response (body is not valid JSON{detail}) after {self.http_attempts} HTTP attempt(s)"
            )
        if isinstance(cause, _PARSE_ERRORS):
            summary = _summarise_validation(cause)
            if self.over_budget():
                return self._budget_error(summary)
            attempts = getattr(error, "n_attempts", None) or self.meter.usage.calls
            return InvalidAnswer(f"model answer failed validation after {attempts} attempt(s), re-asked with the errors each time: {redact(summary)}")
        return LLMError(f"{type(cause or error).__name__}: {redact(str(cause or error))[:500]}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StructuredLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
