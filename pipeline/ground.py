"""Grounding: turn candidates and speaker decisions into validated record parts.

Spans come from the rules, so each quote's text is sliced from the article by
construction (text the model writes in the `llm` strategy is aligned back to
offsets in `pipeline/llm_extract.py`). `quotes` carry named speakers only; a
statement whose cue describes a source without naming one ("analysts said", "a
senior official said", "polls showed") becomes an unnamed-source quote with that
description as printed; any other candidate with no source is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.candidates import PERSON_ROLE_NOUNS, QuoteCandidate, SpeakerCue
from pipeline.normalise import HONORIFICS, Inventory, Org, Person
from pipeline.organisations import LEGAL_SUFFIX, organisation_type
from pipeline.roles import TITLE_WORDS
from schemas.records import CAP_MAJOR_TOPICS, Organisation, PolicyArea, Quote, Span, Speaker, UnnamedSourceQuote

Confidence = Literal["certain", "guess", "unknown"]



@dataclass(frozen=True)
class RuleSpeaker:
    source: Person | Org | None
    confidence: Confidence


# Description heads that refer back to an organisation, and the organisation type they prefer.
ORG_HEAD_TYPES: dict[str, str | None] = {
    "company": "company", "firm": "company", "group": "company", "carmaker": "company", "maker": "company",
    "manufacturer": "company", "retailer": "company", "lender": "company", "bank": None, "insurer": "company",
    "newspaper": "media", "paper": "media", "broadcaster": "media", "outlet": "media", "daily": "media",
    "ministry": "government", "regulator": "government", "agency": None, "watchdog": "government",
    "commission": None, "department": None, "bureau": None, "administration": None, "council": None,
    "committee": None, "institute": None, "academy": None, "university": None, "association": None,
    "union": None, "chamber": None, "party": None, "court": None, "parliament": None, "organisation": None,
    "organization": None, "body": None, "exchange": None, "board": None, "office": None, "authority": None,
    "executive": None, "fund": None, "federation": None, "centre": None, "center": None,
}  # fmt: skip
SPOKES = ("spokesperson", "spokesman", "spokeswoman", "spokespeople", "representative", "official")


def rule_speaker(candidate: QuoteCandidate, inventory: Inventory, previous: Person | Org | None, text: str = "") -> RuleSpeaker:
    """What the text's own attribution says, and how sure code can be of it."""
    cue = candidate.speaker_cue
    if cue is None:
        return RuleSpeaker(previous, "guess" if previous else "unknown")
    if cue.kind in ("name", "organisation"):
        person = inventory.person_for_mention(cue.text, cue.start)
        if person is not None:
            return RuleSpeaker(person, "certain")
        org = inventory.org_for_mention(cue.text, cue.start) or _org_mentioned_within(inventory, cue)
        if org is not None:
            return RuleSpeaker(org, "certain")
        named = person_from_cue(cue) if cue.kind == "name" or _person_shaped_org_cue(cue) else None
        return RuleSpeaker(named, "certain" if named else "unknown")
    if cue.kind == "description":
        # A surname the tagger read as a common noun ("Giles said"): the person of that name on record.
        if re.fullmatch(r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)*", cue.text) and (person := _person_by_surname(inventory, cue.text)) is not None:
            return RuleSpeaker(person, "certain")
        source = resolve_description(cue, inventory, text, previous)
        return RuleSpeaker(source, "guess" if source is not None else "unknown")
    # Pronoun: the nearest named person before it (for he/she) or the previous speaker.
    if cue.antecedent is not None:
        antecedent = inventory.person_for_mention(cue.antecedent.text, cue.antecedent.start) or person_from_cue(cue.antecedent)
        if antecedent is not None:
            return RuleSpeaker(antecedent, "guess")
    if cue.text.lower() in ("he", "she", "i"):
        return RuleSpeaker(_nearest_person_before(inventory, cue.start) or previous, "guess")
    return RuleSpeaker(previous, "guess")


def _org_mentioned_within(inventory: Inventory, cue: SpeakerCue) -> Org | None:
    """An organisation cue whose bounds the organisation stage drew otherwise ("the Harbor Institute for
    Justice" read as "Harbor Institute" and "Institute for Justice"): the organisation mentioned first
    inside it."""
    if cue.kind != "organisation":
        return None
    inside = [(start, -(end - start), org) for org in inventory.organisations for start, end in org.mentions if cue.start <= start and end <= cue.end]
    return min(inside, key=lambda found: found[:2])[2] if inside else None


def _person_shaped_org_cue(cue: SpeakerCue) -> bool:
    """An entity spaCy tagged as an organisation that the organisation stage rejected (it is not in the
    inventory) and that reads like a person's name: two or three capitalised words, none of them an
    organisation word ("Ministry", "Union", "Corp"), not an acronym."""
    words = cue.text.split()
    return (
        cue.kind == "organisation"
        and 2 <= len(words) <= 3
        and all(w[:1].isupper() and not w.isupper() for w in words)
        and organisation_type(cue.text) == "other"
        and not LEGAL_SUFFIX.search(cue.text)
    )


def person_from_cue(cue: SpeakerCue) -> Person | None:
    """A person the inventory does not hold (a surname-only or untagged name): the name as the cue writes it.

    "Sen. Okafor" -> "Okafor". Only name-shaped cues qualify: capitalised words, at most five of them,
    with lower-case name particles ("de", "van") allowed.
    """
    bare = HONORIFICS.sub("", cue.text.strip())
    bare = re.sub(r"['\u2019]s?$", "", bare).strip(" ,.")
    words = bare.split()
    if not 1 <= len(words) <= 5 or not words[0][:1].isupper():
        return None
    if any(not w[:1].isupper() and w.lower() not in _NAME_PARTICLES for w in words):
        return None
    return Person(key=f"C{cue.start}", name=bare, mentions=[(cue.start, cue.end)])


_NAME_PARTICLES = frozenset("de da del della di du van von der den la le al el bin ibn st. jr. sr. ii iii".split())


def resolve_description(cue: SpeakerCue, inventory: Inventory, text: str, previous: Person | Org | None) -> Person | Org | None:
    """Resolve "an Acme spokesperson", "the commission", "the company", "a renowned economist".

    Unnamed groups ("economists", "British farmers") and descriptions naming no known body resolve
    to nothing: records only carry statements of named people and organisations.
    """
    head = cue.head or cue.text.split()[-1].lower()
    if cue.plural:
        return None
    # Drop the conduit: "a spokesman for the regulator quoted in a newspaper".
    own = re.split(r"\s+(?:quoted|cited|reported)\s+(?:in|by)\s+", cue.text)[0]
    named = _org_in(own, inventory, cue.start)
    if named is not None and named.type == "party" and head not in ORG_HEAD_TYPES:
        named = None  # "the Republican presidential candidate", "Democratic leaders": the party only describes
    if head in PERSON_ROLE_NOUNS:
        if named is not None and head in SPOKES:
            return named  # an unnamed spokesperson speaks for the organisation
        person = _person_with_role(inventory, head, cue.start, cataphora=not cue.definite)
        if person is not None:
            return person
        if named is not None:
            return None  # "an Acme executive": an unnamed individual, not the company
        if head in SPOKES and cue.definite and text:
            return _spokes_org_before(text, inventory, cue.start)
        return _titled_person_before(cue, inventory, previous)
    if named is not None:
        return named  # "the Example Times newspaper", "the union's standing committee", "Acme's report"
    if head in TITLE_WORDS:
        return _person_with_role(inventory, head, cue.start, cataphora=False) or _titled_person_before(cue, inventory, previous)
    if head in ORG_HEAD_TYPES and cue.definite:
        wanted = ORG_HEAD_TYPES[head]
        by_name = [o for o in inventory.organisations if any(re.search(rf"\b{re.escape(head)}\b", n, re.I) for n in (o.name, *o.aliases))]
        by_type = [o for o in inventory.organisations if wanted is not None and o.type == wanted]
        for pool in (by_name, by_type):
            org = _most_recent_before(pool, cue.start)
            if org is not None:
                return org
    return None


def _titled_person_before(cue: SpeakerCue, inventory: Inventory, previous: Person | Org | None) -> Person | None:
    """'the senator', 'the former governor' with no one holding that role on record: the person the
    text is about at this point (the previous speaker if a person, else the last person named)."""
    if not cue.definite or cue.head in SPOKES or not cue.text.lower().startswith("the "):
        return None
    if isinstance(previous, Person):
        return previous
    return _nearest_person_before(inventory, cue.start)


def _person_with_role(inventory: Inventory, head: str, offset: int, *, cataphora: bool) -> Person | None:
    """The person whose role uses the head noun: most recent before, or (for 'a ...') the next one after."""
    holders = [p for p in inventory.people if p.role and re.search(rf"\b{re.escape(head)}", p.role, re.I)]
    before = [(max(s for s, _ in p.mentions if s < offset), p) for p in holders if any(s < offset for s, _ in p.mentions)]
    after = [(min(s for s, _ in p.mentions), p) for p in holders if p.mentions and min(s for s, _ in p.mentions) >= offset]
    if cataphora and after:
        nearest = min(after, key=lambda x: x[0])
        if nearest[0] - offset < 1500:
            return nearest[1]
    if before:
        return max(before, key=lambda x: x[0])[1]
    return None


def _spokes_org_before(text: str, inventory: Inventory, offset: int) -> Org | None:
    """'the spokesperson said' after 'an Acme spokesperson': the organisation named with the earlier one."""
    for m in reversed(list(re.finditer(r"\b(?:spokes(?:person|man|woman|people)|representative|official)s?\b", text[:offset], re.I))):
        lo = max(0, m.start() - 40)
        window = text[lo : m.end() + 40]
        found = _orgs_in(window, inventory, m.start())
        if found:
            # The organisation closest to the noun ("a newspaper quoted an Acme spokesperson" -> Acme).
            return min(found, key=lambda x: abs(lo + x[0] - m.start()))[1]
    return None


def _most_recent_before(orgs: list[Org], offset: int) -> Org | None:
    best: tuple[int, Org] | None = None
    for org in orgs:
        for start, _ in org.mentions:
            if start < offset and (best is None or start > best[0]):
                best = (start, org)
    return best[1] if best else None


def _orgs_in(description: str, inventory: Inventory, offset: int | None = None) -> list[tuple[int, Org]]:
    """Organisations named inside a text (by name or alias, else by acronym or trailing short form), with positions."""
    found: list[tuple[int, Org]] = []
    for org in inventory.organisations:
        for name in (org.name, *org.aliases):
            m = re.search(rf"\b{re.escape(name)}\b", description)
            if m:
                found.append((m.start(), org))
                break
    if found:
        return found
    for m in re.finditer(r"\b[A-Z][A-Za-z]+\b", description):
        if m.group(0) in ("The", "A", "An"):
            continue
        org = inventory.org_for_mention(m.group(0), offset)
        if org is not None:
            found.append((m.start(), org))
    return found


def _org_in(description: str, inventory: Inventory, offset: int | None = None) -> Org | None:
    """The first organisation named inside a description."""
    found = _orgs_in(description, inventory, offset)
    return min(found, key=lambda x: x[0])[1] if found else None


def _person_by_surname(inventory: Inventory, word: str) -> Person | None:
    """The one person on record whose last name is `word` (None when none or several)."""
    found = [p for p in inventory.people if len(p.name.split()) > 1 and p.name.split()[-1] == word]
    return found[0] if len(found) == 1 else None


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


def to_unnamed_source_quote(candidate: QuoteCandidate, text: str) -> UnnamedSourceQuote | None:
    """A candidate no named person or organisation was found for, when its cue describes the source
    ("analysts", "a senior official", "the poll"); None for a bare pronoun or no cue at all."""
    cue = candidate.speaker_cue
    if cue is None or cue.kind != "description":
        return None
    # The description's own line and words: a parse that ran over a paragraph break or a bracket
    # ("[CHINA DAILY]\n\nExperts") keeps only what follows it.
    start = max(cue.start, text.rfind("\n", cue.start, cue.end) + 1)
    while start < cue.end and not text[start].isalnum():
        start += 1
    end = cue.end
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:-\u2013\u2014"):
        end -= 1
    if end <= start:
        return None
    return UnnamedSourceQuote(
        text=text[candidate.start : candidate.end],
        type=candidate.type,
        source=text[start:end],
        source_span=Span(start=start, end=end),
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
