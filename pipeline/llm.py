"""One structured-output client for every OpenAI-compatible endpoint.

The embedded llama.cpp server, OpenAI, Ollama and vLLM are all reached the
same way: the `openai` client wrapped by `instructor`, which validates each
answer against a Pydantic model and re-asks with the validation errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

import instructor
import openai
from pydantic import BaseModel

from schemas.records import TokenUsage

T = TypeVar("T", bound=BaseModel)

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class EndpointConfig:
    """Where the model lives. `api_key` is never logged or written anywhere."""

    base_url: str | None
    model: str
    api_key: str = field(default="not-needed", repr=False)
    backend: str = "openai-compatible"
    mode: str = "tools"  # instructor mode: "tools" (grammar-constrained on llama.cpp) or "json"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 2  # instructor re-asks after a validation failure

    @classmethod
    def from_env(cls, *, base_url: str | None = None, model: str | None = None) -> EndpointConfig | None:
        """A remote endpoint from arguments or NEWS_LLM_* / OPENAI_* variables; None means embedded."""
        base_url = base_url or os.environ.get("NEWS_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        api_key = os.environ.get("NEWS_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        model = model or os.environ.get("NEWS_LLM_MODEL")
        if not base_url and not api_key:
            return None
        return cls(
            base_url=base_url,
            model=model or "gpt-4o-mini",
            api_key=api_key or "not-needed",
            backend="openai" if not base_url else "openai-compatible",
            mode=os.environ.get("NEWS_LLM_MODE", "tools"),
        )


@dataclass
class UsageMeter:
    """Counts tokens of every completion, retries included."""

    usage: TokenUsage = field(default_factory=TokenUsage)

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


class StructuredLLM:
    """Ask an endpoint for a Pydantic object; track tokens across retries."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint
        raw = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=endpoint.timeout_s,
            max_retries=2,  # transport-level retries for 429/5xx, with backoff, by the openai client
        )
        mode = instructor.Mode.JSON if endpoint.mode == "json" else instructor.Mode.TOOLS
        self._client = instructor.from_openai(raw, mode=mode)
        self.meter = UsageMeter()
        self.last_raw_output: str | None = None
        self._client.on("completion:response", self._on_response)
        self._client.on("parse:error", self.meter.on_parse_error)

    def _on_response(self, response: Any) -> None:
        self.meter.on_response(response)
        try:
            message = response.choices[0].message
            calls = message.tool_calls or []
            self.last_raw_output = calls[0].function.arguments if calls else message.content
        except (AttributeError, IndexError):
            self.last_raw_output = None

    def ask(self, system: str, question: str, response_model: type[T], *, max_tokens: int = 256) -> T:
        return self._client.chat.completions.create(
            model=self.endpoint.model,
            response_model=response_model,
            max_retries=self.endpoint.max_retries,
            temperature=0,
            max_tokens=max_tokens,
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": question},
            ],
        )
