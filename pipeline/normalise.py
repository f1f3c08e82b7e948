"""Normalisation: who is named in an article, and which organisations.

People: every PERSON mention is resolved to the fullest form of the name in the
article ("Ms. Keller" and "Keller" -> "Anna Keller"), with the role and organisation
given in an appositive or a title (`pipeline.roles`). Organisations come from
`pipeline.organisations` (found, cleaned, merged, typed, given a country and an id).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.organisations import Org, find_organisations, org_for_mention
from pipeline.roles import Person, attach_roles
from pipeline.segment import Entity, SegmentedArticle
from schemas.records import normalise_name

__all__ = ["Inventory", "Org", "Person", "build_inventory"]

# Titles written before a name ("Sen.", "Gov.", "Mrs."): dropped from people's names, here and in ground.py.
HONORIFICS = re.compile(
    r"^(?:(?:mr|mrs|ms|dr|prof|sir|dame|president|premier|vice|prime|minister|chairman|chairwoman|ceo|chancellor|secretary"
    r"|general|governor|senator|sen|sens|gov|reps?|mayor|director|gen|lt|col|capt|sgt|rev|judge|justice|speaker|rabbi)\.?\s+)+",
    re.I,
)


@dataclass
class Inventory:
    people: list[Person]
    organisations: list[Org]

    def person_for_mention(self, text: str, offset: int) -> Person | None:
        """The person a name mention refers to: exact, then by any shared name token."""
        bare = _strip_honorifics(text)
        if not bare:
            return None
        for person in self.people:
            if normalise_name(person.name) == normalise_name(bare):
                return person
        tokens = set(normalise_name(bare).split())
        matches = [p for p in self.people if tokens & set(normalise_name(p.name).split())]
        if not matches:
            return None
        # The nearest person mentioned before this point; cataphora falls back to the first after.
        before = [p for p in matches if p.mentions and p.mentions[0][0] <= offset]
        return before[-1] if before else matches[0]

    def org_for_mention(self, text: str, offset: int | None = None) -> Org | None:
        """The organisation a mention names (see `pipeline.organisations.org_for_mention`)."""
        return org_for_mention(self.organisations, text, offset)


def _strip_honorifics(text: str) -> str:
    bare = HONORIFICS.sub("", text.strip())
    return re.sub(r"['’]s?$", "", bare).strip(" ,.")


def build_inventory(seg: SegmentedArticle, speaking: Sequence[tuple[int, int]] = ()) -> Inventory:
    """The article's people and organisations; `speaking`: spans of statement sources (see `org_entities`)."""
    people = _people(seg)
    orgs = find_organisations(seg, [p.name for p in people], speaking)
    inventory = Inventory(people, orgs)
    attach_roles(seg, people, orgs, inventory.org_for_mention)
    return inventory


def _looks_like_a_name(seg: SegmentedArticle, ent: Entity) -> bool:
    """Not a headline fragment the recogniser took for a name ("Lee Defends Plan", "LEE RESIGNS", "Lee's Plan")."""
    span = seg.doc.char_span(ent.start, ent.end, alignment_mode="expand")
    words = ent.text.split()
    if span is None or re.search(r"\w['’]s\s+\w", ent.text):
        return False
    if len(words) > 1 and all(w.isupper() and len(w) > 2 for w in words):
        return False
    # A first name can look like a verb ("Will", "Mark"); a later word that is one is a headline's verb.
    return not any(t.pos_ in ("VERB", "AUX") for t in span[1:])


def _in_title_case_line(text: str, ent: Entity) -> bool:
    """Whether the mention sits in a headline-style line: every word of four letters or more capitalised."""
    start = text.rfind("\n", 0, ent.start) + 1
    end = text.find("\n", ent.end)
    words = re.findall(r"[^\W\d_][\w'’-]{3,}", text[start : end if end >= 0 else len(text)])
    return len(words) >= 3 and all(w[0].isupper() for w in words)


def _headline_name(name: str, body_names: set[str]) -> str:
    """A name a headline ran on into its verb ("Ann Lee Slams Plan"): the longest leading part that the
    article's text names as a person; unchanged when no part is."""
    words = name.split()
    for k in range(len(words) - 1, 0, -1):
        if normalise_name(" ".join(words[:k])) in body_names:
            return " ".join(words[:k])
    return name


def _people(seg: SegmentedArticle) -> list[Person]:
    people: list[Person] = []
    pending: list[Entity] = []
    in_headline = {id(ent) for ent in seg.entities if ent.label == "PERSON" and _in_title_case_line(seg.text, ent)}
    body_names = {normalise_name(_strip_honorifics(e.text)) for e in seg.entities if e.label == "PERSON" and id(e) not in in_headline}
    for ent in seg.entities:
        if ent.label != "PERSON":
            continue
        name = _strip_honorifics(ent.text)
        if id(ent) in in_headline:
            name = _headline_name(name, body_names)
        if len(name) < 2 or not _looks_like_a_name(seg, ent):
            continue
        if len(name.split()) >= 2 and not any(normalise_name(p.name) == normalise_name(name) for p in people):
            if not any(set(normalise_name(name).split()) < set(normalise_name(p.name).split()) for p in people):
                people.append(Person(key=f"P{len(people) + 1}", name=name))
        pending.append(ent)
    inventory = Inventory(people, [])
    for ent in pending:
        person = inventory.person_for_mention(ent.text, ent.start)
        if person is not None:
            person.mentions.append((ent.start, ent.end))
    for person in people:
        person.mentions.sort()
    return people
