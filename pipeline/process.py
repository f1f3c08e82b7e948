"""One article through every stage: segment, find candidates, ask, ground, validate.

`extract_record` is a plain function: the Prefect flow calls it once per
article, tests and benchmarks call it directly.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from datetime import UTC, datetime

from pipeline.candidates import QuoteCandidate, find_candidates
from pipeline.chunk import chunk_article, chunk_for
from pipeline.extract import CAP_DESCRIPTIONS, PROMPT_VERSION, ask_speaker, ask_topics, system_prompt
from pipeline.ground import RuleSpeaker, rule_speaker, to_organisations, to_policy_areas, to_quote
from pipeline.ingest import Article
from pipeline.llm import StructuredLLM
from pipeline.normalise import Inventory, Org, Person, build_inventory
from pipeline.segment import SegmentedArticle, segment
from schemas.records import ArticleMeta, ArticleRecord, Provenance, TokenUsage

log = logging.getLogger(__name__)

RULES_BACKEND = "rules"


def extract_record(article: Article, llm: StructuredLLM | None, *, model: str, backend: str) -> ArticleRecord:
    """Extract one article. `llm=None` runs the rule-based baseline (no model calls)."""
    started = time.monotonic()
    usage_before = llm.meter.usage if llm else TokenUsage()
    seg = segment(article.text)
    inventory = build_inventory(seg)
    candidates = find_candidates(seg)
    rule_guesses = _rule_speakers(candidates, inventory)
    chunks = chunk_article(article.text, seg.paragraphs)

    sources: dict[int, Person | Org | None] = {c.id: g.source for c, g in zip(candidates, rule_guesses, strict=True)}
    if llm is not None:
        # Group questions by chunk so each chunk's prompt prefix is read by the model once.
        by_chunk: dict[int, list[QuoteCandidate]] = defaultdict(list)
        for candidate, guess in zip(candidates, rule_guesses, strict=True):
            if guess.confidence != "certain":
                by_chunk[chunk_for(chunks, candidate.start, candidate.end).index].append(candidate)
        codes: list[int] = []
        for chunk in chunks:
            system = system_prompt(article.text, chunk, article.title)
            if chunk.index == 0:
                codes = ask_topics(llm, system)
            for candidate in by_chunk.get(chunk.index, []):
                choice = ask_speaker(llm, system, article.text, candidate, inventory)
                sources[candidate.id] = _by_key(inventory, choice.key)
    else:
        codes = keyword_topics(seg)

    quotes = [to_quote(c, article.text, src, inventory) for c in candidates if (src := sources[c.id]) is not None]
    usage = llm.meter.usage if llm else TokenUsage()
    usage = TokenUsage(
        prompt_tokens=usage.prompt_tokens - usage_before.prompt_tokens,
        completion_tokens=usage.completion_tokens - usage_before.completion_tokens,
        calls=usage.calls - usage_before.calls,
        retries=usage.retries - usage_before.retries,
    )
    return ArticleRecord(
        article=ArticleMeta(
            id=article.id,
            source_file=article.source_file,
            title=article.title,
            published=article.published,
            source=article.source,
            url=article.url,
            text=article.text,
        ),
        quotes=quotes,
        organisations=to_organisations(inventory),
        policy_areas=to_policy_areas(codes, topic_evidence(seg, codes)),
        provenance=Provenance(
            model=model,
            backend=backend,
            prompt_version=PROMPT_VERSION,
            extracted_at=datetime.now(UTC).replace(microsecond=0),
            seconds=round(time.monotonic() - started, 2),
            usage=usage,
        ),
    )


def _rule_speakers(candidates: list[QuoteCandidate], inventory: Inventory) -> list[RuleSpeaker]:
    guesses: list[RuleSpeaker] = []
    previous: Person | Org | None = None
    for candidate in candidates:
        guess = rule_speaker(candidate, inventory, previous)
        guesses.append(guess)
        if guess.source is not None:
            previous = guess.source
    return guesses


def _by_key(inventory: Inventory, key: str | None) -> Person | Org | None:
    if key is None:
        return None
    for item in [*inventory.people, *inventory.organisations]:
        if item.key == key:
            return item
    return None


def _topic_words(code: int) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", CAP_DESCRIPTIONS[code].lower()) if len(w) > 3} - {"policy", "domestic", "affairs"}


def keyword_topics(seg: SegmentedArticle) -> list[int]:
    """Baseline CAP coding: codes ranked by how many sentences use their keywords."""
    counts = {code: len(topic_evidence(seg, [code])[code]) for code in CAP_DESCRIPTIONS}
    ranked = sorted((c for c in counts if counts[c] > 0), key=lambda c: -counts[c])
    return ranked[:2]


def topic_evidence(seg: SegmentedArticle, codes: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Sentences that use a topic's codebook keywords: where a reviewer should look."""
    evidence: dict[int, list[tuple[int, int]]] = {}
    for code in codes:
        words = _topic_words(code)
        evidence[code] = [(s.start, s.end) for s in seg.sentences if words & set(re.findall(r"[a-z]+", s.text.lower()))][:5]
    return evidence
