"""Roles: who each person is and which organisation the article ties them to.

For every person found by `pipeline.normalise`, the role (a title such as "chief economist") and
the organisation come from the article's own wording: an appositive after a full mention, or a
title before it. The organisation is resolved through the caller's lookup, so it is always one of
the article's organisations (and so keeps its registry id).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.segment import SegmentedArticle


@dataclass
class Person:
    key: str  # "P1", "P2", ... in order of first mention
    name: str
    mentions: list[tuple[int, int]] = field(default_factory=list)
    role: str | None = None
    organisation_key: str | None = None


class OrgLike(Protocol):
    key: str
    name: str


# Finds the organisation a mention names (text, offset of the mention) -> organisation or None.
OrgLookup = Callable[[str, int | None], OrgLike | None]


def attach_roles(seg: SegmentedArticle, people: Sequence[Person], find_org: OrgLookup) -> None:
    """Role from the appositive after the first full mention, or a title before it."""
    doc = seg.doc
    for person in people:
        for start, end in person.mentions:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is None:
                continue
            root = span.root
            appos = [t for t in root.children if t.dep_ == "appos" and t.i >= span.end]
            role_text = None
            if appos:
                a = appos[0]
                first = min(t.i for t in a.subtree)
                last = max(t.i for t in a.subtree)
                role_text = doc[first : last + 1].text.strip(" ,.")
            else:
                before = seg.text[max(0, start - 40) : start]
                title = re.search(r"((?:[A-Z][a-z]+\s){1,3})$", before)
                if title and not re.search(r"[.!?]\s*$", before[: title.start()]) and title.group(1).strip() not in ("The", "A", "An", "He", "She"):
                    role_text = title.group(1).strip()
            if not role_text or len(role_text) > 160:
                continue
            person.role = role_text
            role_start = seg.text.find(role_text, start)
            for ent in seg.entities:
                if ent.label == "ORG" and role_start <= ent.start < role_start + len(role_text):
                    org = find_org(ent.text, None)
                    if org is not None:
                        person.organisation_key = org.key
                        break
            break
