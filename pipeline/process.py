"""One article through every stage: segment, find candidates, ask, ground, validate.

`extract_record` is a plain function: the Prefect flow calls it once per
article, tests and benchmarks call it directly.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime

from pipeline.candidates import QuoteCandidate, SpeakerCue, find_candidates
from pipeline.chunk import chunk_article, chunk_for
from pipeline.extract import ask_organisation_types, ask_speaker, system_prompt
from pipeline.ground import RuleSpeaker, rule_speaker, to_organisations, to_policy_areas, to_quote, to_unnamed_source_quote
from pipeline.ingest import Article
from pipeline.llm import StructuredLLM
from pipeline.llm_extract import extract_with_model
from pipeline.normalise import Inventory, Org, Person, build_inventory
from pipeline.segment import SegmentedArticle, segment
from pipeline.strategy import Strategy, prompt_version
from pipeline.topics import code_topics
from schemas.records import ArticleMeta, ArticleRecord, Organisation, PolicyArea, Provenance, Quote, TokenUsage, UnnamedSourceQuote

log = logging.getLogger(__name__)

RULES_BACKEND = "rules"
# Speaker questions to the model for statements the rules leave unattributed. Off: measured on the dev
# and held-out sets (BENCHMARKS.md), the 1.5B model's choices added wrong attributions and ~30 s an
# article; a stronger remote model may do better, so the path stays.
ASK_SPEAKERS = False


def extract_record(
    article: Article, llm: StructuredLLM | None, *, model: str, backend: str, strategy: Strategy | None = None, seg: SegmentedArticle | None = None
) -> ArticleRecord:
    """Extract one article with a strategy (`pipeline.strategy`); `llm=None` runs the rules (no model calls).

    Without a strategy: `assist` when a model is given, else `rules`. `seg`: the article's parse when the
    caller already has it (`pipeline.segment.segment_many`); its parse time is then not in the record's seconds.
    """
    strategy = "rules" if llm is None else (strategy or "assist")
    llm = None if strategy == "rules" else llm
    started = time.monotonic()
    usage_before = llm.meter.usage if llm else TokenUsage()
    if seg is None:
        seg = segment(article.text)
    elif seg.text != article.text:
        raise ValueError(f"the parse given for {article.source_file} is of another text")
    if strategy == "llm" and llm is not None:
        found = extract_with_model(seg, article.title, build_inventory(seg), llm)
        parts = (found.quotes, found.organisations, to_policy_areas(found.codes, found.evidence))
        return _record(article, parts, llm, usage_before, started, model=model, backend=backend, strategy=strategy, model_items=found.counts())
    candidates = find_candidates(seg)
    inventory = inventory_for(seg, candidates)
    rule_guesses = _rule_speakers(candidates, inventory, article.text)
    chunks = chunk_article(article.text, seg.paragraphs)

    sources: dict[int, Person | Org | None] = {c.id: g.source for c, g in zip(candidates, rule_guesses, strict=True)}
    codes, evidence = code_topics(seg, article.title, llm)
    if llm is not None:
        # Measured on the dev set: the rules' attributions beat the model's wherever the text has an
        # attribution the rules can read, and keyword CAP coding beat the model's topic choice; the
        # model is asked only about statements whose cue names someone the rules could not resolve,
        # among the few sources mentioned nearest the statement, grouped by chunk to share the prefix.
        by_chunk: dict[int, list[QuoteCandidate]] = defaultdict(list)
        for candidate, guess in zip(candidates, rule_guesses, strict=True):
            if not ASK_SPEAKERS:
                break
            cue = candidate.speaker_cue
            if guess.source is None and cue is not None and cue.kind in ("name", "organisation", "description") and not cue.plural:
                by_chunk[chunk_for(chunks, candidate.start, candidate.end).index].append(candidate)
        for chunk in chunks:
            if not by_chunk.get(chunk.index):
                continue
            system = system_prompt(article.text, chunk, article.title)
            for candidate in by_chunk[chunk.index]:
                choice = ask_speaker(llm, system, article.text, candidate, inventory)
                sources[candidate.id] = _by_key(inventory, choice.key)
        # Organisations whose names carry no telling word are typed by the model's world knowledge.
        untyped = [org for org in inventory.organisations if org.type_source == "default"]
        for key, org_type in ask_organisation_types(llm, article.text, article.title, untyped).items():
            next(org for org in untyped if org.key == key).type = org_type
    kept = _dedupe_attributed(candidates, sources)
    quotes = [to_quote(c, article.text, src, inventory) for c in kept if (src := sources[c.id]) is not None]
    unnamed = [u for c in kept if sources[c.id] is None and (u := to_unnamed_source_quote(c, article.text)) is not None]
    parts = (quotes, to_organisations(inventory), to_policy_areas(codes, evidence))
    return _record(article, parts, llm, usage_before, started, model=model, backend=backend, strategy=strategy, unnamed=unnamed)


def _record(
    article: Article,
    parts: tuple[list[Quote], list[Organisation], list[PolicyArea]],
    llm: StructuredLLM | None,
    usage_before: TokenUsage,
    started: float,
    *,
    model: str,
    backend: str,
    strategy: Strategy,
    model_items: dict | None = None,
    unnamed: list[UnnamedSourceQuote] | None = None,
) -> ArticleRecord:
    """The validated record: the article, what was extracted, and how (tokens of this article only)."""
    quotes, organisations, policy_areas = parts
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
        unnamed_source_quotes=unnamed or [],
        organisations=organisations,
        policy_areas=policy_areas,
        provenance=Provenance(
            model=model,
            backend=backend,
            prompt_version=prompt_version(strategy),
            extracted_at=datetime.now(UTC).replace(microsecond=0),
            seconds=round(time.monotonic() - started, 2),
            usage=usage,
            strategy=strategy,
            model_items=model_items,
        ),
    )


def inventory_for(seg: SegmentedArticle, candidates: list[QuoteCandidate]) -> Inventory:
    """The article's people and organisations, told which mentions are the sources of statements."""
    # One span per source: the candidates of one attribution share its cue.
    return build_inventory(seg, sorted({(c.speaker_cue.start, c.speaker_cue.end) for c in candidates if c.speaker_cue and _may_name_a_body(c.speaker_cue)}))


def _may_name_a_body(cue: SpeakerCue) -> bool:
    """A source that names an organisation, or a campaign ("the Lee campaign", a description to spaCy)."""
    return cue.kind == "organisation" or (cue.kind == "description" and cue.head == "campaign" and not cue.plural)


def _rule_speakers(candidates: list[QuoteCandidate], inventory: Inventory, text: str = "") -> list[RuleSpeaker]:
    guesses: list[RuleSpeaker] = []
    previous: Person | Org | None = None
    for candidate in candidates:
        guess = rule_speaker(candidate, inventory, previous, text)
        guesses.append(guess)
        if guess.source is not None:
            previous = guess.source
    return guesses


def _dedupe_attributed(candidates: list[QuoteCandidate], sources: dict[int, Person | Org | None]) -> list[QuoteCandidate]:
    """One quote per stretch of text: of two overlapping candidates keep the attributed (then the longer) one."""
    kept: list[QuoteCandidate] = []
    for c in sorted(candidates, key=lambda c: (sources[c.id] is None, -(c.end - c.start))):
        if any(c.start < k.end and k.start < c.end for k in kept):
            continue
        kept.append(c)
    return sorted(kept, key=lambda c: c.start)


def _by_key(inventory: Inventory, key: str | None) -> Person | Org | None:
    if key is None:
        return None
    for item in [*inventory.people, *inventory.organisations]:
        if item.key == key:
            return item
    return None
