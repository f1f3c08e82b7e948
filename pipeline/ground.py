"""Grounding: turn candidates and speaker decisions into validated record parts.

Spans come from the rules, so each quote's text is sliced from the article by
construction; `align` exists for answers from elsewhere (a remote model that
returns text, a stored record) and maps text back to exact offsets, tolerant of
quote-mark and whitespace differences. Candidates with no named source are
dropped: records only carry attributed statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.candidates import QuoteCandidate
from pipeline.normalise import Inventory, Org, Person
from schemas.records import CAP_MAJOR_TOPICS, Organisation, PolicyArea, Quote, Span, Speaker

Confidence = Literal["certain", "guess", "unknown"]

_MARKS = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00ab": '"', "\u00bb": '"', "\u2032": "'"})


@dataclass(frozen=True)
class RuleSpeaker:
    source: Person | Org | None
    confidence: Confidence


def rule_speaker(candidate: QuoteCandidate, inventory: Inventory, previous: Person | Org | None) -> RuleSpeaker:
    """What the text's own attribution says, and how sure code can be of it."""
    cue = candidate.speaker_cue
    if cue is None:
        return RuleSpeaker(previous, "guess" if previous else "unknown")
    if cue.kind in ("name", "organisation"):
        person = inventory.person_for_mention(cue.text, cue.start)
        if person is not None:
            return RuleSpeaker(person, "certain")
        org = inventory.org_for_mention(cue.text)
        if org is not None:
            return RuleSpeaker(org, "certain")
        return RuleSpeaker(None, "unknown")
    if cue.kind == "description":
        org = inventory.org_for_mention(cue.text) or _org_in(cue.text, inventory)
        if org is not None:
            return RuleSpeaker(org, "guess")
        return RuleSpeaker(_nearest_person_before(inventory, cue.start), "guess")
    # Pronoun: the nearest named person before it (for he/she) or the previous speaker.
    if cue.text.lower() in ("he", "she", "i"):
        return RuleSpeaker(_nearest_person_before(inventory, cue.start) or previous, "guess")
    return RuleSpeaker(previous, "guess")


def _org_in(description: str, inventory: Inventory) -> Org | None:
    for org in inventory.organisations:
        for name in (org.name, *org.aliases):
            if re.search(rf"\b{re.escape(name)}\b", description):
                return org
    return None


def _nearest_person_before(inventory: Inventory, offset: int) -> Person | None:
    best: tuple[int, Person] | None = None
    for person in inventory.people:
        for start, _ in person.mentions:
            if start < offset and (best is None or start > best[0]):
                best = (start, person)
    return best[1] if best else None


def to_quote(candidate: QuoteCandidate, text: str, source: Person | Org, inventory: Inventory) -> Quote:
    if isinstance(source, Person):
        org = next((o for o in inventory.organisations if o.key == source.organisation_key), None)
        speaker = Speaker(name=source.name, kind="person", role=source.role, organisation_id=org.id if org else None)
    else:
        speaker = Speaker(name=source.name, kind="organisation", organisation_id=source.id)
    return Quote(
        text=text[candidate.start : candidate.end],
        type=candidate.type,
        speaker=speaker,
        span=Span(start=candidate.start, end=candidate.end),
        cue=candidate.cue,
    )


def to_organisations(inventory: Inventory) -> list[Organisation]:
    return [
        Organisation(
            id=org.id,
            name=org.name,
            aliases=list(org.aliases),
            type=org.type,
            country=org.country,
            mentions=[Span(start=s, end=e) for s, e in org.mentions],
        )
        for org in inventory.organisations
    ]


def to_policy_areas(codes: list[int], evidence: dict[int, list[tuple[int, int]]]) -> list[PolicyArea]:
    return [
        PolicyArea(code=code, name=CAP_MAJOR_TOPICS[code], evidence=[Span(start=s, end=e) for s, e in evidence.get(code, [])])
        for code in codes
    ]


def align(needle: str, text: str) -> tuple[int, int] | None:
    """Exact offsets of `needle` in `text`, ignoring quote-mark style and whitespace runs."""
    direct = text.find(needle)
    if direct >= 0:
        return direct, direct + len(needle)
    # Build a normalised copy of the text with a map back to original offsets.
    norm_chars: list[str] = []
    index: list[int] = []
    prev_space = False
    for i, ch in enumerate(text.translate(_MARKS)):
        if ch.isspace():
            if prev_space:
                continue
            ch, prev_space = " ", True
        else:
            prev_space = False
        norm_chars.append(ch)
        index.append(i)
    haystack = "".join(norm_chars)
    target = " ".join(needle.translate(_MARKS).split())
    pos = haystack.find(target)
    if pos < 0 or not target:
        return None
    return index[pos], index[pos + len(target) - 1] + 1
