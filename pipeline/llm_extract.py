"""The `llm` strategy: the model extracts, code grounds and checks every item.

Per chunk (`pipeline.chunk` windows with a paragraph of overlap) the model
returns lists of quotes, organisations and policy areas (`pipeline.extract`
response models, validated and re-asked by instructor within the article's
token budget). Nothing it writes reaches a record unchecked:

* **Quotes** are aligned to an exact span of the article: exact match first
  (quote-mark style and whitespace ignored), then a fuzzy alignment
  (rapidfuzz `partial_ratio_alignment`, score >= `FUZZY_THRESHOLD`, snapped to
  word boundaries, at least `MIN_TOKEN_SHARE` of the model's words in the span
  and a span of about the same length). A quote may be given as its first and
  last words (`ANCHOR_SEPARATOR`): both anchors are aligned and the span runs
  between them. The record's text is always the article's slice, never the
  model's words; a quote that does not align is dropped and counted.
* **Speakers** must be mentioned in the article, and are resolved to the same
  `Person`/`Org` objects the rules build (`normalise.build_inventory`), so
  names, roles, organisation links and registry ids match the other strategies.
* **Duplicates** (the same quote from two overlapping chunks) are merged; of
  two overlapping spans the exactly aligned, then the longer, is kept.
* **Organisations** are merged into the rules' inventory (`org_for_mention`:
  names, aliases, acronyms, short forms) and with each other by normalised
  name; an organisation none of whose names is in the article is dropped.
* **Policy areas**: codes are checked against the CAP codebook and voted over
  the chunks (main topic first); evidence sentences are aligned like quotes.

Every proposed item is counted as kept, merged into another, or dropped with
its reason (`Tally`); the counts go into the record's provenance.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from pipeline.candidates import PERSON_ROLE_NOUNS, QuoteCandidate, SpeakerCue
from pipeline.chunk import Chunk, chunk_article, words_for
from pipeline.extract import ChunkExtraction, ModelOrganisation, ModelQuote, ask_chunk, llm_system_prompt
from pipeline.ground import resolve_description, to_organisations, to_quote
from pipeline.llm import StructuredLLM
from pipeline.normalise import HONORIFICS, Inventory, Org, Person
from pipeline.organisations import LEGAL_SUFFIX, organisation_type
from pipeline.segment import SegmentedArticle
from pipeline.topics import topic_evidence
from schemas.records import CAP_MAJOR_TOPICS, Organisation, Quote, normalise_name

log = logging.getLogger(__name__)

FUZZY_THRESHOLD = 90.0  # rapidfuzz partial_ratio, 0-100: a few changed characters pass, a paraphrase does not
MIN_TOKEN_SHARE = 0.8  # of the model's words, found in the aligned span
MIN_FUZZY_CHARS = 16  # shorter text is aligned exactly or not at all
MAX_QUOTE_CHARS = 3000  # an anchored quote spans at most this much
DUPLICATE_OVERLAP = 0.5  # two spans sharing this share of the shorter one are one quote
MAX_TOPICS = 3
TOPIC_SHARE = 0.3  # a code is kept when its vote reaches this share of the main topic's
COMPACT_BACKENDS = ("embedded-llama.cpp",)  # slow local models write anchors instead of whole quotes

_MARKS = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2018": "'", "\u2019": "'", "\u2032": "'", "`": "'"})
_EDGE_MARKS = "\"'\u201c\u201d\u201e\u00ab\u00bb\u2018\u2019 \t\n"
_NO_SPEAKER = {"", "none", "null", "unknown", "n/a", "unnamed", "anonymous", "no one", "nobody"}
_WORD = re.compile(r"\w+(?:'\w+)*")


# --------------------------------------------------------------------------- counts


@dataclass
class Tally:
    """What became of one kind of model-proposed item: proposed = kept + merged + sum(dropped)."""

    proposed: int = 0
    kept: int = 0
    aligned_fuzzily: int = 0  # of the kept: aligned by the fuzzy step, not exactly
    merged: int = 0  # duplicates merged into a kept item
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> count

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def as_dict(self) -> dict:
        return {
            "proposed": self.proposed,
            "kept": self.kept,
            "aligned_fuzzily": self.aligned_fuzzily,
            "merged": self.merged,
            "dropped": dict(sorted(self.dropped.items())),
        }


@dataclass
class ModelExtraction:
    quotes: list[Quote]
    organisations: list[Organisation]
    codes: list[int]
    evidence: dict[int, list[tuple[int, int]]]
    tallies: dict[str, Tally]
    chunks: int

    def counts(self) -> dict:
        return {kind: tally.as_dict() for kind, tally in self.tallies.items()}


# --------------------------------------------------------------------------- alignment


@dataclass(frozen=True)
class Alignment:
    start: int
    end: int
    fuzzy: bool


def _folded(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with quote marks folded and whitespace runs collapsed, and each character's original offset."""
    chars: list[str] = []
    index: list[int] = []
    for run in re.finditer(r"\s+|\S+", text.translate(_MARKS).lower()):
        if run.group().isspace():
            chars.append(" ")
            index.append(run.start())
        else:
            chars.append(run.group())
            index.extend(range(run.start(), run.end()))
    return "".join(chars), index


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.translate(_MARKS).lower())


def _exact(needle: str, text: str, lo: int, hi: int) -> Alignment | None:
    """The first occurrence of `needle` in text[lo:hi], as printed or with marks, case and whitespace runs aside."""
    direct = text.find(needle, lo, hi)
    if direct >= 0:
        return Alignment(direct, direct + len(needle), False)
    folded, index = _folded(text[lo:hi])
    target = " ".join(needle.translate(_MARKS).lower().split())
    pos = folded.find(target) if target else -1
    if pos < 0:
        return None
    return Alignment(lo + index[pos], lo + index[pos + len(target) - 1] + 1, False)


def _fuzzy(needle: str, text: str, lo: int, hi: int) -> Alignment | None:
    target = " ".join(needle.translate(_MARKS).lower().split())
    hay, index = _folded(text[lo:hi])
    if len(target) < MIN_FUZZY_CHARS or len(target) > len(hay):
        return None
    found = fuzz.partial_ratio_alignment(target, hay, score_cutoff=FUZZY_THRESHOLD)
    if found is None:
        return None
    start, end = found.dest_start, found.dest_end
    while start > 0 and hay[start - 1].isalnum():  # snap to whole words
        start -= 1
    while end < len(hay) and hay[end].isalnum():
        end += 1
    a, b = lo + index[start], lo + index[end - 1] + 1
    wanted, got = _tokens(needle), set(_tokens(text[a:b]))
    if not wanted or sum(t in got for t in wanted) / len(wanted) < MIN_TOKEN_SHARE:
        return None
    if not 0.75 <= (b - a) / max(1, len(needle)) <= 1.33:
        return None
    return Alignment(a, b, True)


def align_text(needle: str, text: str, lo: int = 0, hi: int | None = None) -> Alignment | None:
    """Where `needle` stands in text[lo:hi]: exactly (marks, case and whitespace aside), else fuzzily, else None."""
    hi = len(text) if hi is None else hi
    return _exact(needle, text, lo, hi) or _fuzzy(needle, text, lo, hi)


def _anchored(head: str, tail: str, text: str, lo: int, hi: int) -> Alignment | None:
    """The span from the first anchor's start to the second's end, the second within `MAX_QUOTE_CHARS`."""
    pos = lo
    while pos < hi:
        first = align_text(head, text, pos, hi)
        if first is None:
            return None
        second = align_text(tail, text, first.start, min(hi, first.start + MAX_QUOTE_CHARS))
        if second is not None and second.end > first.end - 1:
            return Alignment(first.start, second.end, first.fuzzy or second.fuzzy)
        pos = first.end
    return None


def align_quote(quote_text: str, text: str, region: tuple[int, int]) -> Alignment | None:
    """A model's quote (whole, or 'first words ... last words') aligned in its chunk, else anywhere in the article."""
    needle = quote_text.strip().strip(_EDGE_MARKS).rstrip(",;")
    if not needle:
        return None
    for lo, hi in (region, (0, len(text))):
        found = _exact(needle, text, lo, hi)
        if found is None:
            parts = [p.strip().strip(_EDGE_MARKS) for p in re.split(r"\s*(?:\.\.\.|\u2026)\s*", needle)]
            if len(parts) >= 2 and parts[0] and parts[-1]:
                found = _anchored(parts[0], parts[-1], text, lo, hi)
            else:
                found = _fuzzy(needle, text, lo, hi)
        if found is not None:
            return _trimmed(found, text)
    return None


def _trimmed(found: Alignment, text: str) -> Alignment:
    """Without surrounding whitespace, quotation marks, or a trailing comma, semicolon or colon."""
    start, end = found.start, found.end
    opened_single = start < end and text[start] in "'\u2018"
    while start < end and text[start] in _EDGE_MARKS:
        start += 1
    while end > start and (text[end - 1] in ",;: \t\n\"\u201c\u201d\u201e\u00ab\u00bb" or (opened_single and text[end - 1] in "'\u2019")):
        end -= 1
    return Alignment(start, end, found.fuzzy)


# --------------------------------------------------------------------------- mentions


def _occurrences(name: str, text: str) -> list[tuple[int, int]]:
    """Word-bounded occurrences of a name (quote-mark style and whitespace aside); case-blind only if none match in case."""
    words = name.translate(_MARKS).split()
    if not words:
        return []
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    folded_text = text.translate(_MARKS)
    found = list(re.finditer(pattern, folded_text))
    if not found and len("".join(words)) >= 4:
        found = list(re.finditer(pattern, folded_text, re.I))
    return [(m.start(), m.end()) for m in found]


def _mentioned(name: str, text: str) -> bool:
    return bool(re.search(rf"(?<!\w){re.escape(' '.join(name.split()).translate(_MARKS))}(?!\w)", " ".join(text.translate(_MARKS).split()), re.I))


# --------------------------------------------------------------------------- organisations


class OrgBook:
    """The article's organisations: the rules' inventory, grown by the model's proposals; `chosen` are in the record."""

    def __init__(self, inventory: Inventory, text: str, tally: Tally) -> None:
        self.inventory = inventory
        self.text = text
        self.tally = tally
        self.chosen: list[Org] = []

    def find(self, names: list[str], offset: int | None = None) -> Org | None:
        for name in names:
            org = self.inventory.org_for_mention(name, offset)
            if org is not None:
                return org
        keys = {_org_key(n) for n in names}
        return next((o for o in self.inventory.organisations if keys & {_org_key(n) for n in (o.name, *o.aliases)}), None)

    def choose(self, org: Org) -> None:
        if org not in self.chosen:
            self.chosen.append(org)

    def propose(self, proposal: ModelOrganisation, offset: int) -> None:
        self.tally.proposed += 1
        forms = list(dict.fromkeys(n.strip() for n in (proposal.name, proposal.canonical_name or "", *proposal.aliases) if n and n.strip()))
        verbatim = [n for n in forms if _occurrences(n, self.text)]
        org = self.find(forms, offset)
        if not verbatim and (org is None or not org.mentions):
            self.tally.drop("not_in_text")
            return
        if not verbatim:  # another spelling of an organisation the article names ("Ministry of Industry & IT")
            self.tally.merged += 1
            self.choose(org)
            return
        if org is None:
            canonical = (proposal.canonical_name or proposal.name).strip()
            org = Org(key=f"O{len(self.inventory.organisations) + 1}", name=canonical)
            org.type = proposal.type if proposal.type != "other" else organisation_type(canonical)
            org.country = _country(proposal.country)
            self.inventory.organisations.append(org)
        elif org.type_source == "default" or org.country_source == "default":
            # The rules' fallbacks give way to the model's answer; a keyword the rules read stays.
            if org.type_source == "default" and proposal.type != "other":
                org.type = proposal.type
            if org.country_source == "default" and _country(proposal.country):
                org.country = _country(proposal.country)
        for name in verbatim:
            self._add_form(org, name)
        if org in self.chosen:
            self.tally.merged += 1
        else:
            self.tally.kept += 1
            self.choose(org)

    def _free_occurrences(self, name: str, owner: Org | None) -> list[tuple[int, int]]:
        """Occurrences of a name not inside another organisation's mention."""
        taken = [m for o in self.inventory.organisations if o is not owner for m in o.mentions]
        return [(s, e) for s, e in _occurrences(name, self.text) if not any(a <= s and e <= b and (a, b) != (s, e) for a, b in taken)]

    def _add_form(self, org: Org, name: str) -> None:
        spans = self._free_occurrences(name, org)
        if not spans:
            return
        written = self.text[spans[0][0] : spans[0][1]]
        if written != org.name and written not in org.aliases:
            org.aliases.append(written)
        for span in spans:
            if self.text[span[0] : span[1]] in (org.name, *org.aliases) and span not in org.mentions:
                org.mentions.append(span)
        org.mentions.sort()


def _one_per_id(orgs: list[Org], people: list[Person]) -> list[Org]:
    """Organisations whose canonical names normalise alike are one (a record's ids are unique)."""
    by_id: dict[str, Org] = {}
    for org in orgs:
        kept = by_id.setdefault(org.id, org)
        if kept is org:
            continue
        for alias in (org.name, *org.aliases):
            if alias != kept.name and alias not in kept.aliases:
                kept.aliases.append(alias)
        kept.mentions = sorted(set(kept.mentions) | set(org.mentions))
        for person in people:
            if person.organisation_key == org.key:
                person.organisation_key = kept.key
    return list(by_id.values())


def _org_key(name: str) -> str:
    return re.sub(r"^the ", "", normalise_name(LEGAL_SUFFIX.sub("", name.strip())))


def _country(code: str | None) -> str | None:
    code = (code or "").strip().upper()
    return code if re.fullmatch(r"[A-Z]{2}", code) else None


# --------------------------------------------------------------------------- speakers


def resolve_speaker(name: str, offset: int, text: str, inventory: Inventory, book: OrgBook) -> tuple[Person | Org | None, str | None]:
    """The person or organisation a model-named speaker is, among those the article mentions; else why not.

    Exact person name, then organisation (name, alias, acronym, short form), then a surname or
    part of a name, then a title or description ("the finance minister", "Premier") resolved by the
    rules' own `resolve_description`; a capitalised name the entity recogniser missed becomes a new
    person. A speaker the article does not mention is never accepted.
    """
    name = " ".join(name.split()).strip(" ,.")
    if name.lower() in _NO_SPEAKER:
        return None, "no_speaker"
    bare = re.sub(r"^(?:the|a|an)\s+", "", HONORIFICS.sub("", name), flags=re.I).strip()
    if not _mentioned(bare or name, text):
        return None, "speaker_not_in_article"
    for person in inventory.people:
        if bare and normalise_name(person.name) == normalise_name(bare):
            return person, None
    described = not bare or bare[:1].islower() or re.match(r"(?:the|a|an)\s", name, re.I) is not None
    if not described:
        org = book.find([name, bare], offset)
        if org is not None:
            return org, None
        person = inventory.person_for_mention(bare, offset)
        if person is not None:
            return person, None
    head = (bare or name).split()[-1].lower()
    if described or (len(bare.split()) == 1 and head in PERSON_ROLE_NOUNS):
        cue = SpeakerCue(text=name, start=offset, end=offset, kind="description", head=head, definite=not re.match(r"an?\s", name, re.I))
        source = resolve_description(cue, inventory, text, None)
        return (source, None) if source is not None else (None, "speaker_unresolved")
    if re.fullmatch(r"(?:[A-Z][\w'\u2019.-]+\s+){1,3}[A-Z][\w'\u2019-]+", bare):
        # A name the entity recogniser missed: a new person, with the article's mentions of it.
        person = Person(key=f"P{len(inventory.people) + 1}", name=bare, mentions=_occurrences(bare, text))
        inventory.people.append(person)
        return person, None
    return None, "speaker_unresolved"


def _attach(person: Person, proposal: ModelQuote, text: str, book: OrgBook, offset: int) -> None:
    """Role and organisation from the model where the rules found none, if the article says them."""
    if person.role is None and proposal.speaker_role and _mentioned(proposal.speaker_role, text):
        person.role = " ".join(proposal.speaker_role.split())
    if person.organisation_key is None and proposal.speaker_organisation:
        org = book.find([proposal.speaker_organisation], offset)
        if org is not None and org.mentions:
            person.organisation_key = org.key


# --------------------------------------------------------------------------- quotes


@dataclass
class _Placed:
    start: int
    end: int
    fuzzy: bool
    type: str
    cue: str | None
    source: Person | Org


def _place_quotes(
    answers: list[tuple[Chunk, ChunkExtraction]], seg: SegmentedArticle, inventory: Inventory, book: OrgBook, tally: Tally
) -> list[_Placed]:
    """Align, attribute, and merge duplicates; a quote running into the previous one starts where that ends."""
    text = seg.text
    placed: list[_Placed] = []
    for chunk, answer in answers:
        for proposal in answer.quotes:
            tally.proposed += 1
            found = align_quote(proposal.text, text, (chunk.start, chunk.end))
            if found is None or found.end <= found.start:
                tally.drop("not_in_text")
                continue
            source, why = resolve_speaker(proposal.speaker, found.start, text, inventory, book)
            if source is None:
                tally.drop(why or "speaker_unresolved")
                continue
            if isinstance(source, Person):
                _attach(source, proposal, text, book, found.start)
            cue = " ".join(proposal.cue.split()) if proposal.cue and _mentioned(proposal.cue, text) else None
            placed.append(_Placed(found.start, found.end, found.fuzzy, proposal.type, cue, source))
    kept: list[_Placed] = []
    for item in sorted(placed, key=lambda p: (p.fuzzy, -(p.end - p.start), p.start)):
        if any(_overlap(item, k) >= DUPLICATE_OVERLAP for k in kept):
            tally.merged += 1
            continue
        kept.append(item)
    kept = _without_overlaps(sorted(kept, key=lambda p: p.start), text, tally)
    tally.kept = len(kept)
    tally.aligned_fuzzily = sum(k.fuzzy for k in kept)
    return kept


def _overlap(a: _Placed, b: _Placed) -> float:
    shared = min(a.end, b.end) - max(a.start, b.start)
    return max(0, shared) / max(1, min(a.end - a.start, b.end - b.start))


def _without_overlaps(items: list[_Placed], text: str, tally: Tally) -> list[_Placed]:
    """Quotes whose boundaries ran into the previous quote start where it ends."""
    out: list[_Placed] = []
    for item in items:
        if out and item.start < out[-1].end:
            start = out[-1].end
            while start < item.end and (text[start] in _EDGE_MARKS or text[start] in ",;:."):
                start += 1
            if item.end - start < 2:
                tally.merged += 1
                continue
            item.start = start
        out.append(item)
    return out


# --------------------------------------------------------------------------- policy areas


def _vote_topics(
    answers: list[tuple[Chunk, ChunkExtraction]], seg: SegmentedArticle, tally: Tally
) -> tuple[list[int], dict[int, list[tuple[int, int]]]]:
    """Codes voted over chunks (weighted by rank and chunk length), main first; evidence sentences aligned."""
    votes: dict[int, float] = defaultdict(float)
    proposals: Counter[int] = Counter()
    evidence: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for chunk, answer in answers:
        words = max(1, len(seg.text[chunk.start : chunk.end].split()))
        for rank, area in enumerate(answer.policy_areas):
            tally.proposed += 1
            code = int(area.code)
            if code not in CAP_MAJOR_TOPICS:  # the response model allows only codebook codes; checked again here
                tally.drop("not_in_codebook")
                continue
            proposals[code] += 1
            votes[code] += words / (rank + 1)
            found = align_quote(area.evidence, seg.text, (chunk.start, chunk.end)) if area.evidence else None
            if found is not None:
                sentence = seg.sentence_at(found.start)
                if (sentence.start, sentence.end) not in evidence[code]:
                    evidence[code].append((sentence.start, sentence.end))
    ranked = sorted(votes, key=lambda c: (-votes[c], c))
    codes = [c for c in ranked[:MAX_TOPICS] if votes[c] >= TOPIC_SHARE * votes[ranked[0]]] if ranked else []
    for code in proposals:
        if code in codes:
            tally.kept += 1
            tally.merged += proposals[code] - 1
        else:
            tally.dropped["minor_topic"] += proposals[code]
    keyword = topic_evidence(seg, [c for c in codes if not evidence.get(c)])
    return codes, {c: (evidence.get(c) or keyword.get(c, []))[:5] for c in codes}


# --------------------------------------------------------------------------- the strategy


def is_compact(llm: StructuredLLM) -> bool:
    return llm.endpoint.backend in COMPACT_BACKENDS


def llm_chunks(seg: SegmentedArticle, title: str | None, llm: StructuredLLM) -> list[Chunk]:
    """Windows sized so that prompt and window fit the endpoint's prompt cap: nothing is cut."""
    reserved = len(llm_system_prompt("", Chunk(0, 0, 0), 99, title, compact=is_compact(llm))) + 200
    return chunk_article(seg.text, seg.paragraphs, max_words=words_for(llm.endpoint.max_prompt_chars, reserved))


def extract_with_model(seg: SegmentedArticle, title: str | None, inventory: Inventory, llm: StructuredLLM) -> ModelExtraction:
    """Ask the model chunk by chunk, then ground and check everything it proposed."""
    text = seg.text
    compact = is_compact(llm)
    chunks = llm_chunks(seg, title, llm)
    answers: list[tuple[Chunk, ChunkExtraction]] = []
    for chunk in chunks:
        log.info("Asking the model for chunk %d of %d (%d words)", chunk.index + 1, len(chunks), len(text[chunk.start : chunk.end].split()))
        answers.append((chunk, ask_chunk(llm, llm_system_prompt(text, chunk, len(chunks), title, compact=compact), compact=compact)))
    tallies = {"quotes": Tally(), "organisations": Tally(), "policy_areas": Tally()}
    book = OrgBook(inventory, text, tallies["organisations"])
    for chunk, answer in answers:
        for proposal in answer.organisations:
            book.propose(proposal, chunk.start)
    placed = _place_quotes(answers, seg, inventory, book, tallies["quotes"])
    for item in placed:  # organisations a kept quote refers to are in the record too
        if isinstance(item.source, Org):
            book.choose(item.source)
        else:
            linked = next((o for o in inventory.organisations if o.key == item.source.organisation_key), None)
            if linked is not None:
                book.choose(linked)
    chosen = _one_per_id(book.chosen, inventory.people)
    final = Inventory(inventory.people, sorted(chosen, key=lambda o: (o.mentions[0][0] if o.mentions else len(text), o.name)))
    quotes = [
        to_quote(QuoteCandidate(id=i, start=p.start, end=p.end, type=p.type, sentence=seg.sentence_at(p.start).index, cue=p.cue), text, p.source, final)  # type: ignore[arg-type]
        for i, p in enumerate(placed)
    ]
    codes, evidence = _vote_topics(answers, seg, tallies["policy_areas"])
    log.info(
        "Model items: quotes %s, organisations %s, policy areas %s",
        *(tallies[k].as_dict() for k in ("quotes", "organisations", "policy_areas")),
    )
    return ModelExtraction(quotes, to_organisations(final), codes, evidence, tallies, len(chunks))

