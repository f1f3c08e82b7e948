"""Extraction strategies: who does the extracting, and how a run picks one.

* `rules`  - no model: quotes, speakers, organisations and CAP codes from the rules alone.
* `assist` - the rules extract; the model answers small enum questions (organisation types,
  a close CAP call). The default for the embedded model, where it measured best.
* `llm`    - the model extracts quotes, organisations and policy areas chunk by chunk
  (`pipeline.llm_extract`); code aligns every item to the article and checks it.
  The default when an endpoint other than the embedded model is configured.

Chosen per run by the CLI (`--strategy`), the flow parameter `strategy`, or the
environment variable `NEWS_EXTRACTION_STRATEGY`, first given wins.
"""

from __future__ import annotations

import os
from typing import Literal, get_args

from pipeline.extract import LLM_PROMPT_VERSION, PROMPT_VERSION

Strategy = Literal["rules", "assist", "llm"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
STRATEGY_ENV = "NEWS_EXTRACTION_STRATEGY"


def resolve_strategy(requested: str | None, *, rules_only: bool = False, remote: bool = False) -> Strategy:
    """The run's strategy: the one asked for (argument, then environment), else the default for its endpoint.

    `rules_only` (the older `--rules-only` switch) means `rules`; `remote` is True when an endpoint other
    than the embedded model is configured.
    """
    if rules_only:
        if requested and requested.strip().lower() != "rules":
            raise ValueError(f"--rules-only conflicts with strategy {requested!r}")
        return "rules"
    chosen = (requested or os.environ.get(STRATEGY_ENV) or "").strip().lower()
    if not chosen:
        return "llm" if remote else "assist"
    if chosen not in STRATEGIES:
        raise ValueError(f"unknown extraction strategy {chosen!r}; choose one of: {', '.join(STRATEGIES)}")
    return chosen  # type: ignore[return-value]


def prompt_version(strategy: str) -> str:
    """The prompt version a record of this strategy carries (part of every cache key)."""
    return LLM_PROMPT_VERSION if strategy == "llm" else PROMPT_VERSION
