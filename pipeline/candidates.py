"""Deterministic candidate finding: quoted spans, reported-speech clauses, speaker cues.

Code finds where quotes can be and what the text says about who spoke; the LLM
only judges what code cannot (whose words these are when the text says "he",
"the chairman" or nothing at all). Every candidate carries exact character
offsets into the article, so nothing here can invent text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from weakref import WeakKeyDictionary

from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.tokens import Token

from pipeline.segment import SegmentedArticle

# Reporting verbs mined from PolNeAR train cues (scripts/mine_cues.py): lemma -> how the content attaches.
REPORTING_VERBS_FILE = Path(__file__).parent / "resources" / "reporting_verbs.json"
# A mined frame other than a clausal complement is used only for verbs that are a cue at least this often
# when they occur (the lexicon's `precision`). A bare direct object ("endorsed X", "proposed X", "rejected
# the claim") is weaker evidence of reported content than an open complement or a prepositional object
# ("vowed to X", "railed against X"), so it needs more. PolNeAR train quote F1: every frame at 0.5: 0.608,
# at 0.3: 0.625 (but actions such as "proposed new rules" become quotes); objects at 0.5 / 0.6 and other
# frames at 0.3: 0.617 / 0.615. Of the two near-equal settings the stricter one is kept (at 0.5 the
# held-out check set gains a spurious "rejected the claim that ...").
MIN_FRAME_PRECISION = {"dobj": 0.6}
MIN_OTHER_FRAME_PRECISION = 0.3


@lru_cache(maxsize=1)
def reporting_verb_frames() -> dict[str, frozenset[str]]:
    """Mined lemma -> content frames (ccomp, dobj, xcomp, prep:<word>), object frames filtered by precision."""
    data = json.loads(REPORTING_VERBS_FILE.read_text(encoding="utf-8"))
    frames: dict[str, frozenset[str]] = {}
    for lemma, entry in data["verbs"].items():
        kept = {"ccomp"} | {f for f in entry["frames"] if entry["precision"] >= MIN_FRAME_PRECISION.get(f, MIN_OTHER_FRAME_PRECISION)}
        frames[lemma] = frozenset(kept)
    return frames


# Lemmas of verbs that introduce reported speech or a stated position (hand-listed before the mined
# lexicon existed; kept, with their content rules below, beside the mined verbs).
LEGACY_SPEECH_VERBS = frozenset(
    """say tell add note stress emphasize emphasise warn argue point call believe expect announce state
    explain claim insist predict suggest urge reiterate highlight accuse attribute acknowledge estimate
    forecast anticipate mention indicate caution describe confirm deny reveal observe write report
    recommend pledge vow propose contend maintain assert admit remark comment underline underscore
    lash criticize criticise praise welcome question""".split()
)
# Verbs whose object alone says nothing but whose object with a second phrase does, and the prepositions
# that open it (default "for"/"over"): praise and blame with its reason ("criticized Ann Lee for closing the
# road", "blamed the delays on the storm", "credited the council with saving the ferry"), comparisons and
# attributions with their second term ("likened the plan to a tax", "attributed the rise to lower rates"),
# framings ("dismissed the report as a hoax", "hailed the deal as a breakthrough").
REASON_PREPOSITIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys("criticize criticise praise slam blast fault thank applaud commend chide rebuke scold mock defend condemn".split(), ("for", "over")),
    "blame": ("for", "on"),
    "credit": ("with", "for"),
    "congratulate": ("on", "for"),
    "hail": ("as", "for"),
    **dict.fromkeys("dismiss portray characterize characterise tout".split(), ("as",)),
    "attribute": ("to",),
    "compare": ("to", "with"),
    "liken": ("to",),
}
JUDGING_VERBS = frozenset(REASON_PREPOSITIONS)
# Of these, the ones neither hand-listed nor mined report only in that frame ("compared himself to X" does;
# "compared notes" does not).
REASON_ONLY_VERBS = JUDGING_VERBS - LEGACY_SPEECH_VERBS - frozenset(reporting_verb_frames())
SPEECH_VERBS = LEGACY_SPEECH_VERBS | JUDGING_VERBS | frozenset(reporting_verb_frames()) - {"accord"}
# Verbs whose object (not a clause) is the reported content: "called for X", "highlighted X".
# Not "propose": a proposal is an action, not a statement with reported content.
OBJECT_CONTENT_VERBS = frozenset(
    "call highlight urge lash criticize criticise praise welcome recommend pledge emphasize emphasise stress underline underscore".split()
)
# "A Harbor Institute poll found that ...": a finding verb reports content only when its subject is a
# poll, survey, study or report (one by a named body speaks for that body; others are unnamed sources).
FINDING_VERBS = frozenset("find".split())
RESEARCH_NOUNS = frozenset("poll survey study report analysis review audit investigation inquiry research census".split())
# Verbs whose reported content is a yes/no question: "questioned if X", "asked whether X".
QUESTION_VERBS = frozenset("question ask wonder query".split())
# Nouns naming a person by role: "a spokesman for X", "the chairman", "a renowned economist".
PERSON_ROLE_NOUNS = frozenset(
    """spokesman spokeswoman spokesperson official representative economist analyst chairman chairwoman chair
    president minister director executive researcher professor ceo chief head secretary commissioner founder
    scholar manager leader premier governor ambassador adviser advisor lawyer strategist dean envoy officer
    spokespeople""".split()
)
PRONOUNS = frozenset("he she they it we i".split())
TITLE_PREFIXES = frozenset("mr mr. mrs mrs. ms ms. dr dr. prof prof. president premier minister chairman".split())

OPENING_MARKS = "\u201c\u00ab\u201e"  # “ « „
CLOSING_MARKS = "\u201d\u00bb"  # ” »
STRAIGHT = '"'
MIN_DIRECT_WORDS = 3
MIN_NAMING_WORDS = 2  # 'called X "Y"': the object and what it is called

SpeakerCueKind = Literal["name", "pronoun", "description", "organisation", "none"]


@dataclass(frozen=True)
class SpeakerCue:
    """What the text itself says about the speaker, before any resolution."""

    text: str
    start: int
    end: int
    kind: SpeakerCueKind
    head: str | None = None  # lower-cased head noun of a description ("spokesperson", "commission")
    plural: bool = False  # "economists said": an unnamed group
    definite: bool = False  # "the company" (anaphoric) vs "a spokesman" (possibly cataphoric)
    antecedent: SpeakerCue | None = None  # for "he"/"she": the person the text most plausibly means


@dataclass
class QuoteCandidate:
    id: int
    start: int
    end: int
    type: Literal["direct", "indirect"]
    sentence: int
    cue: str | None = None
    speaker_cue: SpeakerCue | None = None
    notes: list[str] = field(default_factory=list)

    def text(self, article_text: str) -> str:
        return article_text[self.start : self.end]


def quoted_spans(text: str, paragraphs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans inside quotation marks, per paragraph, tolerant of stray marks.

    Marks: curly and angle quotes, straight double quotes, and the typewriter pairs of LexisNexis
    exports (two apostrophes '' and two backticks ``). A straight mark or a '' pair opens when no
    quote is open and closes one otherwise. A second opening mark inside an open quote is kept as
    text (garbled or nested quotes); a quote left open at the end of a paragraph closes there, as
    news style continues multi-paragraph quotes with a fresh opening mark. Marks inside a markup tag left
    in plain text ('<tweet author="@x" date="May 2">') delimit attribute values, not quotes: skipped.
    """
    spans: list[tuple[int, int]] = []
    for p_start, p_end in paragraphs:
        open_at: int | None = None
        tags = [(m.start(), m.end()) for m in _MARKUP_TAG.finditer(text, p_start, p_end)]
        for mark in _QUOTE_MARK.finditer(text, p_start, p_end):
            if any(a < mark.start() < b for a, b in tags):
                continue
            kind = _mark_kind(mark.group(0))
            if open_at is None and kind in ("open", "toggle"):
                open_at = mark.end()
            elif open_at is not None and kind in ("close", "toggle"):
                spans.append((open_at, mark.start()))
                open_at = None
        if open_at is not None:
            spans.append((open_at, p_end))
    return [trim_span(text, s, e) for s, e in spans if text[s:e].strip()]


_MARKUP_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s+[\w:-]+\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s<>\"']+))*\s*/?>")
_QUOTE_MARK = re.compile("''|``|[\"" + OPENING_MARKS + CLOSING_MARKS + "]")


def _in_spans(offset: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether a character offset falls inside one of the (start, end) spans (quoted words, say)."""
    return any(start <= offset < end for start, end in spans)


def _mark_kind(mark: str) -> Literal["open", "close", "toggle"]:
    if mark == "``" or mark in OPENING_MARKS:
        return "open"
    if mark in CLOSING_MARKS:
        return "close"
    return "toggle"


def trim_span(text: str, start: int, end: int, *, drop_final_period: bool = False) -> tuple[int, int]:
    """Trim whitespace, leading punctuation and 'that', trailing commas (and optionally the final period)."""
    while start < end and (text[start].isspace() or text[start] in ",;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:"):
        end -= 1
    if drop_final_period:
        while end > start and text[end - 1] in ". ":
            end -= 1
    lead = re.match(r"that\s+", text[start:end])
    if lead:
        start += lead.end()
    return start, end


def _word_count(s: str) -> int:
    return len(re.findall(r"\w+", s))


def _name_span(token: Token, sent: SpacySpan) -> tuple[int, int]:
    """The full proper-name (or noun-phrase head) span around a subject token."""
    for ent in _ents_in(sent):
        if ent.start <= token.i < ent.end:
            return ent.start_char, ent.end_char
    left = token
    while left.i > sent.start and left.nbor(-1).dep_ in ("compound", "amod", "det", "poss") and left.nbor(-1).head.i in (token.i, left.i):
        left = left.nbor(-1)
    right = token
    return left.idx, right.idx + len(right.text)


def _entity_at(token: Token, sent: SpacySpan, labels: tuple[str, ...] = ("ORG", "PERSON")) -> SpacySpan | None:
    for ent in _facts(sent.doc).ents:
        if ent.start <= token.i < ent.end and ent.label_ in labels:
            return ent
    return None


def _cue_from_entity(ent: SpacySpan) -> SpeakerCue:
    kind: SpeakerCueKind = "organisation" if ent.label_ == "ORG" else "name" if ent.label_ == "PERSON" else "description"
    if kind == "organisation" and len(ent) == 1 and any(p.text.split()[-1] == ent.text for p in _facts(ent.doc).people):
        kind = "name"  # one word read as an organisation here and as a person's surname elsewhere ("Lee said")
    if kind == "description":
        # "Republicans", "many Democrats", "Germans": a group named by a nationality or party is unnamed.
        root = ent.root
        return SpeakerCue(ent.text, ent.start_char, ent.end_char, kind, head=root.lemma_.lower(), plural=root.tag_ in ("NNS", "NNPS"))
    return SpeakerCue(ent.text, ent.start_char, ent.end_char, kind)


def speaker_cue_for(subject: Token, sent: SpacySpan) -> SpeakerCue:
    text_all = _facts(sent.doc).text
    lowered = subject.lower_
    if lowered in PRONOUNS:
        antecedent = _antecedent(subject) if lowered in ("he", "she") else None
        return SpeakerCue(subject.text, subject.idx, subject.idx + len(subject.text), "pronoun", antecedent=antecedent)
    if subject.ent_type_ not in ("PERSON", "ORG"):
        # "The city's regulator, the Water Board, said", "One of the men, Ann Lee, said" and a dateline the
        # parser made the subject ("WASHINGTON -- President Ann Lee ... said"): the name in apposition speaks.
        for child in subject.children:
            if child.dep_ == "appos" and (ent := _entity_at(child, sent)) is not None:
                return _cue_from_entity(ent)
    start, end = _name_span(subject, sent)
    for ent in _ents_in(sent):
        if ent.start <= subject.i < ent.end and (ent.label_ in ("ORG", "PERSON") or subject.pos_ != "PROPN"):
            return _cue_from_entity(ent)
    if subject.tag_ in ("NNPS", "NNS") and subject.ent_type_ == "NORP":
        # "Many Republicans said", "Germans say": members of a party or nation, an unnamed group.
        return SpeakerCue(text_all[start:end], start, end, "description", head=subject.lemma_.lower(), plural=True)
    if subject.pos_ == "PROPN":
        # A name the tagger gave another label ("Acme's Jan Novak" as a work of art): its proper-noun run.
        left = subject
        while left.i > sent.start and left.nbor(-1).pos_ == "PROPN" and left.nbor(-1).dep_ == "compound" and left.nbor(-1).head == subject:
            left = left.nbor(-1)
        start, end = left.idx, subject.idx + len(subject.text)
        return SpeakerCue(text_all[start:end], start, end, "name")
    # "the agency's chief spokesman Jan Novak said": a name inside the noun phrase.
    for token in subject.subtree:
        if token.i > subject.i and (ent := _entity_at(token, sent, ("PERSON",))) is not None:
            return _cue_from_entity(ent)
    # "an Acme spokesperson", "the company", "a spokesman for the regulator": keep the noun phrase
    # (with a following "for/of/at X") as a description for the resolver.
    left = subject.left_edge
    right = subject
    # A bare singular noun with a capital is a name the tagger missed ("Lee at the time said"): its
    # prepositional phrase is not part of it.
    bare_name = subject.tag_ == "NN" and subject.text[:1].isupper() and not any(c.dep_ in ("det", "poss") for c in subject.children)
    for child in subject.children:
        if child.dep_ == "prep" and child.i > subject.i and child.lower_ in ("for", "of", "at", "with", "from") and not bare_name:
            right = child.right_edge
    det = next((c.lower_ for c in subject.children if c.dep_ in ("det", "poss")), "")
    definite = det in ("the", "this", "that") or det.endswith("'s") or any(c.dep_ == "poss" for c in subject.children)
    plural = subject.tag_ in ("NNS", "NNPS")
    end_char = right.idx + len(right.text)
    return SpeakerCue(text_all[left.idx : end_char], left.idx, end_char, "description", head=subject.lemma_.lower(), plural=plural, definite=definite)


ANTECEDENT_WINDOW = 1500  # characters back from a pronoun in which its antecedent is looked for


@dataclass(frozen=True)
class _PersonMention:
    start: int  # token index
    end: int
    start_char: int
    end_char: int
    text: str
    sentence_start: int  # token index of the first token of its sentence
    subject: bool  # its root is a (passive) subject
    speaks: bool  # ... of a speech verb ("Lee said ...")


@dataclass(frozen=True)
class _DocFacts:
    """What candidate finding asks of a parsed doc again and again, computed once per doc.

    spaCy rebuilds `doc.text` and `doc.ents` from every token on each access, and `Span.sent` scans the
    document: asked per verb, subject and pronoun they were most of the rules path's attribution time.
    """

    text: str
    ents: tuple[SpacySpan, ...]
    sentence_bounds: list[tuple[int, int]]  # token index -> (first token, end) of its sentence
    people: list[_PersonMention]


_DOC_FACTS: WeakKeyDictionary[Doc, _DocFacts] = WeakKeyDictionary()


def _facts(doc: Doc) -> _DocFacts:
    facts = _DOC_FACTS.get(doc)
    if facts is None:
        bounds: list[tuple[int, int]] = [(0, 0)] * len(doc)
        for sent in doc.sents:
            for i in range(sent.start, sent.end):
                bounds[i] = (sent.start, sent.end)
        ents = tuple(doc.ents)
        people = [
            _PersonMention(
                e.start, e.end, e.start_char, e.end_char, e.text, bounds[e.start][0], e.root.dep_ in ("nsubj", "nsubjpass"), e.root.dep_ == "nsubj" and e.root.head.lemma_ in SPEECH_VERBS
            )
            for e in ents
            if e.label_ == "PERSON"
        ]
        facts = _DocFacts(doc.text, ents, bounds, people)
        _DOC_FACTS[doc] = facts
    return facts


def _sentence_of(token: Token) -> SpacySpan:
    """`token.sent`, from the per-doc table."""
    start, end = _facts(token.doc).sentence_bounds[token.i]
    return token.doc[start:end]


def _ents_in(span: SpacySpan) -> list[SpacySpan]:
    """`span.ents` (the doc's entities wholly inside the span), from the per-doc table."""
    return [e for e in _facts(span.doc).ents if e.start >= span.start and e.end <= span.end]


def _antecedent(pronoun: Token) -> SpeakerCue | None:
    """The person a 'he'/'she' most plausibly means: in the nearest sentence before it (or its own clause
    before it) that names a person, the person who speaks there, else the one who is a subject there, else
    the first person named there."""
    people = [p for p in _facts(pronoun.doc).people if p.end <= pronoun.i and pronoun.idx - p.start_char < ANTECEDENT_WINDOW]
    if not people:
        return None
    sentence_start = people[-1].sentence_start
    same = [p for p in people if p.sentence_start == sentence_start]
    # One who speaks there is the likeliest ("Lee said he never met Reed. He added ..."), then the last subject.
    subjects = [p for p in same if p.speaks] or [p for p in same if p.subject]
    chosen = subjects[-1] if subjects else same[0]
    return SpeakerCue(chosen.text, chosen.start_char, chosen.end_char, "name")


def _reports_finding(verb: Token) -> bool:
    """'the survey found that ...' (not 'police found a body'): a finding verb with a research subject."""
    if verb.lemma_ not in FINDING_VERBS:
        return False
    subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
    return subject is not None and subject.lemma_.lower() in RESEARCH_NOUNS and any(c.dep_ == "ccomp" for c in verb.children)


def _is_as_clause(verb: Token) -> bool:
    """The verb heads an adverbial clause opened by "as" ("as Lee said", "as reported by X", "as Lee talked")."""
    return verb.dep_ == "advcl" and any(c.dep_ == "mark" and c.lower_ == "as" for c in verb.children)


GERUND_SUBJECT_PREPOSITIONS = frozenset("by after before while since upon in".split())


def _inverted_parenthetical_subject(verb: Token) -> Token | None:
    """The name right after "said" in "<A>, said Ann Lee(, an expert), <B>": a comma before the verb, the name
    opening the verb's clausal complement as its subject, and a comma closing the name (with its appositive)."""
    doc = verb.doc
    if verb.i < 2 or doc[verb.i - 1].text != "," or verb.i + 1 >= len(doc):
        return None
    for clause in verb.children:
        if clause.dep_ != "ccomp" or clause.i < verb.i:
            continue
        name = next((c for c in clause.children if c.dep_ == "nsubj" and c.left_edge.i == verb.i + 1), None)
        if name is not None and name.pos_ == "PROPN" and name.right_edge.text == "," and name.right_edge.i + 1 < clause.i:
            return name
    return None


def _subject_of(verb: Token) -> Token | None:
    # "As reported by the Gazette, ...": the agent of a passive as-clause.
    if verb.tag_ == "VBN" and _is_as_clause(verb):
        agent = next((c for c in verb.children if c.dep_ == "agent"), None)
        pobj = next((c for c in agent.children if c.dep_ == "pobj"), None) if agent is not None else None
        if pobj is not None:
            return pobj
    # "The new timetable, said Ann Lee, a planner, would cut the island off": an inverted attribution set off inside the
    # clause it reports; the parser makes the name the subject of that clause.
    if (inverted := _inverted_parenthetical_subject(verb)) is not None:
        return inverted
    # Of several subjects (a garbled parse of '"..., but they ...," Ann Lee said'), the one nearest the verb.
    for child in sorted(verb.children, key=lambda c: abs(c.i - verb.i)):
        if child.dep_ in ("nsubj", "nsubjpass"):
            # "Ann Lee, who said ...": the relative pronoun stands for the noun the clause modifies.
            if child.tag_ in ("WP", "WDT") and verb.dep_ == "relcl":
                return verb.head
            return child
    # "X said and added that ...": the conjunct shares the first verb's subject.
    if verb.dep_ == "conj":
        found = _subject_of(verb.head)
        if found is not None:
            return found
        # "Clark said A - there are B - but said C": a conjunct the parser hung on the reported clause
        # speaks for the speech verb that governs that clause.
        head = verb.head
        while head.dep_ in ("ccomp", "conj") and head.head.i != head.i:
            head = head.head
            if head.lemma_ in SPEECH_VERBS and head.pos_ in ("VERB", "AUX"):
                return _subject_of(head)
        return None
    # "A newspaper quoted a spokesperson as saying ...": the quoted person is the source.
    if verb.tag_ == "VBG" and verb.dep_ == "pcomp" and verb.head.lower_ == "as" and verb.head.head.lemma_ == "quote":
        for child in verb.head.head.children:
            if child.dep_ == "dobj":
                return child
    # "Lee ended the meeting by saying ...", "Lee, before first saying ..., signed": a gerund after a preposition
    # of time or means shares its clause's subject ("criticized Lee for saying" does not: that is the object's).
    if verb.tag_ == "VBG" and verb.dep_ == "pcomp" and verb.head.lower_ in GERUND_SUBJECT_PREPOSITIONS and verb.head.head.pos_ in ("VERB", "AUX"):
        return _subject_of(verb.head.head)
    # "Noting that ..., Keller said ...": a participle shares its main verb's subject.
    if verb.tag_ == "VBG" and verb.dep_ == "advcl" and verb.head.pos_ in ("VERB", "AUX"):
        return _subject_of(verb.head)
    # "..., the committee, national officials, questioned if ...": a finite verb the parser left without
    # a subject after an appositive takes the noun before the appositive.
    if verb.tag_ in ("VBD", "VBZ", "VBP") and verb.i >= 2 and verb.nbor(-1).text == ",":
        sent = _sentence_of(verb)
        for i in range(verb.i - 2, sent.start, -1):
            if sent.doc[i].text == ",":
                before = sent.doc[i - 1]
                if before.pos_ in ("NOUN", "PROPN") and i - 1 > sent.start:
                    return before
                break
    return None


def _children(verb: Token, sent: SpacySpan) -> list[Token]:
    """The verb's dependents inside this sentence: spaCy's sentences can run across a paragraph break and
    hang the previous paragraph's quote on this paragraph's verb."""
    return [c for c in verb.children if sent.start <= c.i < sent.end]


def _content_span(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """Character span of the reported content governed by a speech verb, within its sentence."""
    found = _parsed_content(verb, sent)
    if found is None:
        return None
    start, end = max(found[0], sent.start_char), min(found[1], sent.end_char)
    return (start, end) if end > start else None


def _parsed_content(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    if verb.lemma_ in REASON_ONLY_VERBS:
        return _object_with_reason(verb, sent)
    if _inverted_parenthetical_subject(verb) is not None:
        return sent.start_char, sent.end_char  # cut around the attribution and its name by `_around_attribution`
    clauses = [child for child in _children(verb, sent) if child.dep_ == "ccomp"]
    if clauses:
        # "A has worked: She said she has sold B": a clause before a colon is not what the verb after it says.
        child = clauses[0]
        if child.i < verb.i and clauses[-1].i > verb.i and any(t.text in (":", ";") for t in sent.doc[child.right_edge.i + 1 : verb.i]):
            child = clauses[-1]
        return child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
    if (clause := _that_clause_by_surface(verb, sent)) is not None:
        return clause
    if (clause := _inverted_conjunct_content(verb, sent)) is not None:
        return clause
    # "Lee said raising fares now would hurt ...": the parser reads a clause with a gerund subject as an open
    # complement of "said"; the clause runs from the gerund to the end of the sentence.
    nxt = verb.i + 1
    if verb.lemma_ == "say" and nxt < sent.end and sent.doc[nxt].tag_ == "VBG" and sent.doc[nxt].dep_ == "xcomp" and sent.doc[nxt].head == verb:
        last = sent.end - 1
        while last > nxt and sent.doc[last].is_punct:
            last -= 1
        return sent.doc[nxt].idx, sent.doc[last].idx + len(sent.doc[last].text)
    if verb.lemma_ in DIRECTIVE_VERBS and (directive := _object_to_do(verb, sent)) is not None:
        return directive
    if verb.lemma_ in QUESTION_VERBS:
        for child in _children(verb, sent):
            if child.dep_ in ("advcl", "ccomp") and child.left_edge.lower_ in ("if", "whether"):
                return child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
        return None
    # "accused X (at a meeting) of causing Y": the charge is the content.
    if verb.lemma_ == "accuse":
        for token in verb.subtree:
            if token.i > verb.i and token.lower_ == "of" and token.dep_ == "prep":
                objs = [c for c in token.children if c.dep_ in ("pcomp", "pobj")]
                if objs:
                    return objs[0].left_edge.idx, objs[0].right_edge.idx + len(objs[0].right_edge.text)
        return None
    if (named := _object_with_complement(verb, sent)) is not None:
        return named
    if (judged := _object_with_reason(verb, sent)) is not None:
        return judged
    if verb.lemma_ in OBJECT_CONTENT_VERBS:
        for child in _children(verb, sent):
            if child.dep_ in ("xcomp", "dobj") and child.i > verb.i and (child.dep_ == "dobj" or child.tag_ == "VBG"):
                # "emphasized boosting consumption and improving livelihoods", "highlighted the need to ..."
                return child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
        for child in _children(verb, sent):
            if child.i < verb.i:
                continue
            if child.dep_ == "prep" and child.lower_ in ("for", "at", "on"):
                objs = [c for c in child.children if c.dep_ == "pobj"]
                if objs:
                    return objs[0].left_edge.idx, objs[0].right_edge.idx + len(objs[0].right_edge.text)
            if child.dep_ == "dobj":
                return child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
    if (clause := _that_clause_after_object(verb, sent)) is not None:
        return clause
    if (clause := _as_clause_content(verb, sent)) is not None:
        return clause
    if (mined := _mined_frame_content(verb, sent)) is not None:
        return mined
    # "A will B, he said.": the verb trails the clause it reports.
    # The attribution must be set off by punctuation ('..., he said'), not be a clause of its own.
    words = [t for t in verb.subtree if not t.is_punct] or [verb]
    set_off = words[0].i > sent.start and (words[0].nbor(-1).is_punct or words[0].nbor(-1).is_quote)
    # It needs its own subject: "X spoke about Y, remarking on Z" does not report "X spoke about Y".
    has_subject = any(c.dep_ in ("nsubj", "nsubjpass") for c in verb.children)
    if verb.dep_ in ("parataxis", "ccomp", "advcl") and verb.head.i < verb.i and verb.head == sent.root and set_off and has_subject:
        if _clause_after_attribution(verb, sent):
            return sent.start_char, sent.end_char  # "A, he said, because B": both sides (cut by `_around_attribution`)
        return sent.start_char, words[0].idx
    if (trailing := _trailing_attribution(verb, sent)) is not None:
        return trailing
    # "The plan, she said, will fail.": an attribution set off by commas inside the clause it reports (the whole
    # sentence; the attribution itself is cut out by `_around_attribution`). Hung on the root, punctuation before
    # it is enough; hung below it ("Unless the council pays, Reed said, the answer is plain: ..."), commas on
    # both sides of the subject and verb set it off.
    if verb.dep_ == "parataxis" and verb.head.i > verb.i and ((verb.head == sent.root and set_off) or _subject_set_off(verb, sent)):
        return sent.start_char, sent.end_char
    return None


NAMING_VERBS = frozenset("call describe label brand dub term deem".split())
# Verbs whose "that" clause can follow an object and phrases: "told the crowd at a dinner that ...".
THAT_AFTER_OBJECT_VERBS = frozenset("say tell inform assure remind warn".split())


def _that_clause_after_object(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'X told the crowd at his dinner for volunteers that he ...': a parse that hangs the "that" clause
    on the last noun as a relative clause. The clause is the content when "that" is not its subject (so not
    "the plan that failed") and no other verb stands between the speech verb and "that"."""
    if verb.lemma_ not in THAT_AFTER_OBJECT_VERBS:
        return None
    for token in sent.doc[verb.i + 1 : sent.end]:
        if token.pos_ in ("VERB", "AUX") or token.is_quote or token.text in ";:":
            return None
        if token.lower_ != "that" or token.dep_ != "mark":
            continue
        clause = token.head
        if clause.i <= token.i or not any(c.dep_ in ("nsubj", "nsubjpass") and c.i > token.i for c in clause.children):
            return None
        last = sent[-1] if not sent[-1].is_punct else sent.doc[sent.end - 2]
        return sent.doc[token.i + 1].idx, last.idx + len(last.text)
    return None


def _object_with_complement(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'called him a kind person', 'called the targets "reasonably impressive"', 'described X as Y':
    the object with what it is called is the content (the object alone says nothing)."""
    if verb.lemma_ not in NAMING_VERBS:
        return None
    children = [c for c in _children(verb, sent) if c.i > verb.i]
    obj = next((c for c in children if c.dep_ == "dobj"), None)
    if obj is None:
        # "called it a disaster" is often parsed as a clausal complement ("it a disaster"): keep the ccomp path.
        return None
    complement = next((c for c in children if c.i > obj.i and (c.dep_ in ("oprd", "xcomp", "ccomp") or (c.dep_ == "prep" and c.lower_ == "as"))), None)
    if complement is None:
        return None
    return _with_closing_mark(sent, obj.left_edge.idx, complement.right_edge.idx + len(complement.right_edge.text))


def _with_closing_mark(sent: SpacySpan, start: int, end: int) -> tuple[int, int]:
    """The parse leaves the closing mark of 'called X "reckless."' outside the phrase: take it in when the
    span opens a quotation it does not close."""
    text = _facts(sent.doc).text
    if (closing := re.match(r'[.,!?]?["\u201d]', text[end : min(end + 2, sent.end_char)])) and text.count('"', start, end) + text.count("\u201c", start, end) == 1:
        end += closing.end()
    return start, end


# Verbs that ask someone to do something: "urged the council to close the road", "called on the council to
# ...", "asked voters to stay home", "told reporters to expect delays". Who is asked and to do what is the content.
DIRECTIVE_VERBS = frozenset("urge call ask press push tell warn encourage challenge implore".split())


def _object_to_do(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'urged the council to close the road': the object and the infinitive after it."""
    children = _children(verb, sent)
    obj = next((c for c in children if c.dep_ == "dobj" and c.i > verb.i), None)
    if obj is None and verb.lemma_ == "call":
        on = next((c for c in children if c.dep_ == "prep" and c.lower_ == "on" and c.i == verb.i + 1), None)
        obj = next((c for c in on.children if c.dep_ == "pobj"), None) if on is not None else None
    if obj is None:
        return None
    todo = next((c for c in children if c.dep_ == "xcomp" and c.i > obj.i and any(a.lower_ == "to" for a in c.children)), None)
    return (obj.left_edge.idx, todo.right_edge.idx + len(todo.right_edge.text)) if todo is not None else None


def _object_with_reason(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'criticized Ann Lee for closing the road': the object with the reason given for the praise or blame
    (or the second term of a comparison or attribution). The reason's preposition is read from the surface
    after the object, up to the next verb or clause punctuation, as the parser often hangs it on a noun."""
    if verb.lemma_ not in JUDGING_VERBS:
        return None
    obj = next((c for c in _children(verb, sent) if c.dep_ == "dobj" and c.i > verb.i), None)
    if obj is None:
        return None
    wanted = REASON_PREPOSITIONS[verb.lemma_]
    doc = sent.doc
    for token in doc[obj.i + 1 : sent.end]:
        if token.pos_ in ("VERB", "AUX") and token.i > obj.right_edge.i or token.text in (";", ":"):
            return None
        if token.dep_ == "prep" and token.lower_ in wanted and any(g.dep_ in ("pobj", "pcomp") for g in token.children):
            return _with_closing_mark(sent, obj.left_edge.idx, token.right_edge.idx + len(token.right_edge.text))
    return None


def _last_comma(doc: Doc, from_i: int, down_to: int) -> int | None:
    """The index of the last comma token in doc[down_to : from_i + 1], or None."""
    return next((i for i in range(from_i, down_to - 1, -1) if doc[i].text == ","), None)


def _subject_set_off(verb: Token, sent: SpacySpan) -> bool:
    """'If X, Ann Lee warned, Y': the attribution is set off by commas though the parse hangs the clause
    before it on the verb."""
    subject = next((c for c in verb.children if c.dep_ == "nsubj" and c.i < verb.i), None)
    if subject is None or subject.left_edge.i <= sent.start:
        return False
    after = verb.i + 1
    return sent.doc[subject.left_edge.i - 1].text == "," and after < sent.end and sent.doc[after].text == ","


def _as_clause_content(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'As the Gazette reported, <clause>.' / '<clause>, as Lee noted.': an as-clause that attributes the
    clause it modifies (the clause before or after it, not the as-clause itself)."""
    head = verb.head
    if head.i == verb.i or not _is_as_clause(verb):
        return None
    # Only a bare attribution ("As Lee said (on Monday / in a letter / to reporters)"): an as-clause with
    # content of its own is one of time or manner ("As Lee talked about X", "as he discussed X").
    for child in verb.children:
        if child.dep_ in ("ccomp", "xcomp", "advcl", "acomp", "attr", "oprd"):
            return None
        if child.dep_ == "dobj" and not (_names_no_content(child) or child.ent_type_ == "ORG"):
            return None
        if child.dep_ == "prep" and child.lower_ not in ("in", "on", "at", "to", "during", "earlier", "last"):
            return None
    if verb.tag_ == "VBN" and verb.lemma_ not in LEGACY_SPEECH_VERBS:
        return None  # "as shown by X" is a demonstration, "as reported by X" an attribution
    lo, hi = verb.left_edge.i, verb.right_edge.i
    left, right = max(head.left_edge.i, sent.start), min(head.right_edge.i, sent.end - 1)
    doc = sent.doc
    if lo == left:  # the as-clause leads
        first = next((i for i in range(hi + 1, right + 1) if not doc[i].is_punct), None)
        return None if first is None else (doc[first].idx, doc[right].idx + len(doc[right].text))
    if hi >= right - 1:  # it trails (before the final stop)
        last = next((i for i in range(lo - 1, left - 1, -1) if not doc[i].is_punct), None)
        return None if last is None else (doc[left].idx, doc[last].idx + len(doc[last].text))
    return None


def _that_clause_by_surface(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'..., noting that at one point he had trailed by 50 points': a speech verb directly followed by the
    complementizer "that" (tagged IN, not the determiner) reports the rest of the sentence, also where the
    parser hung the clause elsewhere and left the verb without a clausal complement."""
    doc = sent.doc
    that = verb.i + 1
    if that + 1 >= sent.end or doc[that].lower_ != "that" or doc[that].tag_ != "IN":
        return None
    # Not "declined that assignment" or "doesn't mention that on the trail": a determiner or a pronoun.
    if doc[that].dep_ not in ("mark", "prep", "dep") or doc[that + 1].is_punct:
        return None
    if not any(t.pos_ in ("VERB", "AUX") for t in doc[that + 1 : sent.end]):
        return None
    last = sent.end - 1
    while last > that and (doc[last].is_punct or doc[last].is_quote):
        last -= 1
    return (doc[that + 1].idx, doc[last].idx + len(doc[last].text)) if last > that else None


def _inverted_conjunct_content(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'<clause>, but <clause>, said the company's chief executive, Ann Lee.': an inverted attribution the
    parser made a conjunct of the clause before it. The verb follows a comma, its subject follows the verb,
    and it governs no object or clause of its own: it reports the sentence up to that comma."""
    doc = sent.doc
    if verb.dep_ != "conj" or verb.head.i >= verb.i or verb.i - 1 <= sent.start or doc[verb.i - 1].text != ",":
        return None
    children = _children(verb, sent)
    if not any(c.dep_ in ("nsubj", "nsubjpass") and c.i > verb.i for c in children):
        return None
    if any(c.dep_ in ("dobj", "ccomp", "xcomp") for c in children):
        return None
    return sent.start_char, doc[verb.i - 1].idx


def _clause_after_attribution(verb: Token, sent: SpacySpan) -> bool:
    """'The plan will fail, he said, because nobody pays for it': after the attribution and its
    closing comma the sentence goes on with a clause of its own (a finite verb with its own subject)."""
    doc = sent.doc
    after = verb.right_edge.i + 1  # the comma is the attribution's own token or the next one
    if doc[after - 1].text != ",":
        if after >= sent.end - 1 or doc[after].text != ",":
            return False
        after += 1
    if any(t.dep_ in ("nsubj", "nsubjpass") and t.head.tag_ in ("VBD", "VBZ", "VBP", "MD") and t.head.i > t.i for t in doc[after : sent.end]):
        return True
    # "The fix is simple, he said, to raise the fare": the rest of the clause he interrupted (not a participle of his own).
    rest = [t for t in doc[after : sent.end] if not t.is_punct]
    return len(rest) >= 2 and rest[0].tag_ not in ("VBG", "VBN") and rest[0].lemma_ not in SPEECH_VERBS


def _trailing_attribution(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """'<clause>, she said (on Monday).' read from the surface when the parse tangles the clause.

    The verb sits after the sentence's last comma (or closing quote), only a short subject phrase lies
    between the two, and nothing after the verb is another verb.
    """
    doc = sent.doc
    comma = next((i for i in range(verb.i - 1, max(sent.start, verb.i - 7) - 1, -1) if doc[i].text == "," or doc[i].is_quote), None)
    if comma is not None and comma == verb.i - 1 and doc[comma].text == ",":
        # '<clause>, her aide, Ann Lee, said': the comma closes an appositive; the subject phrase starts at
        # the comma before the one that opens it.
        opening = _last_comma(doc, verb.i - 3, max(sent.start, verb.i - 10))
        comma = _last_comma(doc, opening - 1, max(sent.start, opening - 7)) if opening is not None else None
    if comma is None or comma - sent.start < 3:
        return None
    between = doc[comma + 1 : verb.i]
    after = doc[verb.i + 1 : sent.end]
    if not 1 <= len(between) <= 12 or any(t.pos_ in ("VERB", "AUX") for t in [*between, *after]) or len(after) > 8:
        return None
    if not any(t.dep_ in ("nsubj", "nsubjpass") or t.pos_ in ("PRON", "PROPN") for t in between):
        return None
    # What it reports is a clause or a quotation: "Then, last week, Tom Reed called." reports nothing.
    before = doc[sent.start : comma]
    if not any(t.pos_ in ("VERB", "AUX") or t.is_quote for t in before):
        return None
    return sent.start_char, doc[comma].idx


def _mined_frame_content(verb: Token, sent: SpacySpan) -> tuple[int, int] | None:
    """The content by the verb's mined frames: its object, open complement or prepositional object."""
    frames = reporting_verb_frames().get(verb.lemma_.lower(), frozenset())
    for child in _children(verb, sent):
        if child.i < verb.i:
            continue
        if child.dep_ in ("dobj", "xcomp") and child.dep_ in frames and not _names_no_content(child):
            return child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
        if child.dep_ == "prep" and f"prep:{child.lower_}" in frames:
            objs = [c for c in child.children if c.dep_ in ("pobj", "pcomp")]
            if objs:
                return objs[0].left_edge.idx, objs[0].right_edge.idx + len(objs[0].right_edge.text)
    return None


def _names_no_content(child: Token) -> bool:
    """An object that is a person ("quoted a spokesman", "praised Ann Lee") or a speech act with no content
    of its own ("declined to comment", "refused to answer") reports nothing."""
    if child.dep_ == "xcomp":
        return child.lemma_.lower() in SPEECH_VERBS
    return child.lemma_.lower() in PERSON_ROLE_NOUNS or child.lower_ in PRONOUNS or child.ent_type_ == "PERSON"


def _around_attribution(verb: Token, subject: Token | None, content: tuple[int, int]) -> list[tuple[int, int]]:
    """A content span that holds its own attribution ("The plan, she said, will fail") is cut around it."""
    start, end = content
    if not start <= verb.idx < end:
        return [content]
    first = min(verb.i, subject.left_edge.i if subject is not None else verb.i)
    doc = verb.doc
    last = verb.i
    while last + 1 < len(doc) and doc[last + 1].dep_ in ("advmod", "npadvmod", "prt") and doc[last + 1].head == verb:
        last += 1
    if subject is not None and subject.i > verb.i:
        last = max(last, subject.right_edge.i)  # "..., said Ann Lee, an expert, ...": the name and its appositive
    pieces = [(start, doc[first].idx), (doc[last].idx + len(doc[last].text), end)]
    return [p for p in pieces if p[1] > p[0]]


def _next_report(verb: Token, content: tuple[int, int], sent: SpacySpan, quotes: list[tuple[int, int]]) -> tuple[Token, int] | None:
    """'said A and insisted that B', 'said A, adding that B': a second reporting verb joined to the reported clause
    (by "and"/"but" or as a participle after a comma) starts a statement of its own. Returns that verb and
    where the first statement ends, or None."""
    start, end = content
    if start <= verb.idx:
        return None
    doc = verb.doc
    for tok in sent:
        if not start < tok.idx < end or tok.pos_ != "VERB" or tok.lemma_ not in SPEECH_VERBS:
            continue
        if _in_spans(tok.idx, quotes):
            continue
        before = tok.i - 1
        while before > sent.start and doc[before].dep_ == "advmod" and doc[before].head == tok:
            before -= 1  # "and later told", "and also insisted"
        joiner = doc[before]
        comma = joiner.text == "," or (joiner.is_quote and before > sent.start and doc[before - 1].text == ",")  # '"...," stating'
        if not ((tok.dep_ == "conj" and joiner.dep_ == "cc") or (tok.tag_ == "VBG" and tok.dep_ in ("advcl", "conj", "xcomp") and comma)):
            continue
        # It must report a clause ("and insisted that B", ", adding that B") or decline to ("and declined to
        # comment"); an object ("..., citing weaker demand") is the reason given, part of the first statement.
        if not any(c.i > tok.i and (c.dep_ == "ccomp" or (c.dep_ == "xcomp" and _names_no_content(c))) for c in tok.children):
            continue
        last = before if joiner.is_quote else before - 1  # a closing mark after the comma stays with its quote
        while last > sent.start and (doc[last].is_punct and not doc[last].is_quote):
            last -= 1
        cut = doc[last].idx + len(doc[last].text)
        if cut > start:
            return tok, cut
    return None


def _name_colon(seg: SegmentedArticle, p_start: int, p_end: int) -> tuple[SpeakerCue, tuple[int, int]] | None:
    """'<Name>: <words>' opening a paragraph (headlines, transcripts, live blogs): the name's words.

    The part before the colon must be a person or organisation name and nothing else (an optional title
    word before it), so labels such as "Update:" or "Photo:" are not speakers.
    """
    colon = seg.text.find(":", p_start, min(p_end, p_start + 60))
    if colon < 0 or p_end - colon < 12:
        return None
    label = seg.doc.char_span(p_start, colon, alignment_mode="expand")
    if label is None:
        return None
    words = [t for t in label if not t.is_punct]
    label_ents = _ents_in(label)
    # A short label the article names in full elsewhere ("Reed: Budget Talks Have Stalled Again", where
    # a title-case headline can make the tagger read the name as a common noun) is that person or body.
    if not label_ents and 1 <= len(words) <= 3 and all(t.text[:1].isupper() for t in words):
        if (named := _named_elsewhere(seg.doc, words[-1].text, label.start_char, label.end_char)) is not None:
            return _cue_from_entity(named), (colon + 1, p_end)
    if not label_ents and 1 <= len(words) <= 4 and all(t.pos_ == "PROPN" for t in words):
        return SpeakerCue(label.text, label.start_char, label.end_char, "name"), (colon + 1, p_end)
    names = [e for e in label_ents if e.label_ in ("PERSON", "ORG") and e.end == label.end]
    if not names or any(t.pos_ not in ("PROPN", "NOUN", "ADJ", "PUNCT") for t in label[: names[0].start - label.start]):
        return None
    return _cue_from_entity(names[0]), (colon + 1, p_end)


def _named_elsewhere(doc: Doc, word: str, start: int, end: int) -> SpacySpan | None:
    """The first person or organisation entity outside [start, end) whose last word is `word`."""
    for ent in _facts(doc).ents:
        if ent.label_ in ("PERSON", "ORG") and not (start <= ent.start_char < end) and ent[-1].text == word:
            return ent
    return None


def _according_to(sent: SpacySpan) -> list[tuple[Token, tuple[int, int]]]:
    """'According to X, ...': the source token and the content span around the phrase."""
    found = []
    for token in sent:
        if token.lower_ == "according" and token.i + 1 < sent.end and sent.doc[token.i + 1].lower_ == "to":
            to = sent.doc[token.i + 1]
            objs = [c for c in to.children if c.dep_ == "pobj"]
            phrase_end = max(token.right_edge.i, to.right_edge.i)
            if not objs:
                # '..., according to the F.A.A.' at a paragraph's end: the parser can leave "to" without
                # an object; the source is the name that follows it, up to the next punctuation.
                run = []
                for t in sent.doc[to.i + 1 : sent.end]:
                    if t.is_punct or t.is_space or t.pos_ in ("VERB", "AUX"):
                        break
                    run.append(t)
                names = [t for t in run if t.pos_ in ("PROPN", "NOUN")]
                if not names:
                    continue
                objs = [names[-1]]
                phrase_end = max(phrase_end, run[-1].i)
            phrase_end_char = sent.doc[phrase_end].idx + len(sent.doc[phrase_end].text)
            before = (sent.start_char, token.idx)
            after = (phrase_end_char, sent.end_char)
            content = after if (after[1] - after[0]) >= (before[1] - before[0]) else before
            # "A, according to X, and B": the phrase closes A; what follows the conjunction is a new claim.
            if content == after and before[1] - before[0] > 0 and re.match(r"\s*,\s*(?:and|but)\b", sent.doc.text[after[0] : after[1]]):
                content = before
            found.append((objs[0], content))
    return found


def _source_of(obj: Token, sent: SpacySpan) -> Token:
    """'according to guidelines released by the Ministry' -> the Ministry.

    A person named by role ('according to a spokesman for the regulator quoted in X') is the source
    itself, not the outlet quoting them.
    """
    if obj.lemma_.lower() in PERSON_ROLE_NOUNS and _entity_at(obj, sent) is None:
        return obj
    for token in obj.subtree:
        if token.dep_ == "pobj" and token.head.dep_ == "agent":
            return token
        if any(ent.label_ in ("ORG", "PERSON") and ent.start <= token.i < ent.end for ent in _ents_in(sent)):
            return token
    return obj


def find_candidates(seg: SegmentedArticle) -> list[QuoteCandidate]:
    text = seg.text
    doc = seg.doc
    quotes = quoted_spans(text, seg.paragraphs)
    candidates: list[QuoteCandidate] = []

    def add(
        start: int, end: int, kind: Literal["direct", "indirect"], sentence: int, cue: str | None, speaker: SpeakerCue | None, min_words: int = MIN_DIRECT_WORDS
    ) -> None:
        start, end = trim_span(text, start, end, drop_final_period=(kind == "indirect"))
        if end - start < 8 or _word_count(text[start:end]) < min_words:
            return
        candidates.append(QuoteCandidate(len(candidates), start, end, kind, sentence, cue, speaker))

    shared_subject: dict[int, Token] = {}  # a second reporting verb joined to a reported clause -> the first's subject
    for sentence in seg.sentences:
        span = doc.char_span(sentence.start, sentence.end, alignment_mode="expand")
        if span is None:
            continue
        for verb in span:
            if verb.pos_ not in ("VERB", "AUX") or not (verb.lemma_ in SPEECH_VERBS or _reports_finding(verb)):
                continue
            if _in_spans(verb.idx, quotes):
                continue  # a verb inside quoted words belongs to the quote, not to an attribution of it
            content = _content_span(verb, span)
            subject = shared_subject.get(verb.i) or _subject_of(verb)
            if subject is not None and _in_spans(subject.idx, quotes):
                subject = None  # a subject inside the quoted words is the quote's own ("We"), not its speaker
            if content is not None and (joined := _next_report(verb, content, span, quotes)) is not None:
                second, cut = joined
                content = (content[0], cut)
                if subject is not None and not any(c.dep_ in ("nsubj", "nsubjpass") for c in second.children):
                    shared_subject[second.i] = subject
            cue = speaker_cue_for(subject, span) if subject is not None else None
            if subject is None and content is not None:
                continue  # no one is said to have said it (garbled or subjectless fragment)
            if content is None and verb.tag_ in ("VBD", "VBZ", "VBP") and verb.lemma_ not in REASON_ONLY_VERBS:
                # Garbled/inverted "... . said X, director of Y." with the content before it (not a
                # participle after a comma: "..., remarking on X" reports nothing before it).
                if verb.i == span.start or (verb.i > span.start and doc[verb.i - 1].is_punct):
                    prev = [s for s in seg.sentences if s.paragraph == sentence.paragraph and s.end <= sentence.start]
                    if prev:
                        content = (prev[0].start, prev[-1].end)
            if content is None:
                continue
            # 'called Tom Reed "reckless."': a naming frame says all in two words.
            min_words = MIN_NAMING_WORDS if _object_with_complement(verb, span) == content else MIN_DIRECT_WORDS
            pieces = _around_attribution(verb, subject, content)
            for k, (start, end) in enumerate(pieces):
                # "Every plan to save the mill, he said, looks doomed": the piece after a cut is short but whole.
                add(start, end, "indirect", sentence.index, verb.text, cue, MIN_NAMING_WORDS if k else min_words)
        for obj, content in _according_to(span):
            if _in_spans(obj.idx, quotes):
                continue  # "according to X" inside quoted words is the speaker's, who relays X
            source = _source_of(obj, span)
            cue = speaker_cue_for(source, span)
            add(content[0], content[1], "indirect", sentence.index, "according to", cue)
    for p_start, p_end in seg.paragraphs:
        if (labelled := _name_colon(seg, p_start, p_end)) is not None:
            speaker, content = labelled
            add(content[0], content[1], "indirect", seg.sentence_at(content[0]).index, ":", speaker)

    # Direct quotes: a quoted span inside a reported clause is part of it unless it is (nearly) all of it.
    for q_start, q_end in quotes:
        min_words = MIN_DIRECT_WORDS
        if _word_count(text[q_start:q_end]) < MIN_DIRECT_WORDS or looks_like_title(text[q_start:q_end]):
            if not _signed_by_speech_verb(seg, q_start, q_end):
                continue
            min_words = 1  # '"Rates matter," Lee said.': a short quote its attribution follows at once
        containing = [c for c in candidates if c.type == "indirect" and c.start <= q_start and q_end <= c.end + 2]
        if containing:
            host = containing[0]
            if (q_end - q_start) >= 0.6 * (host.end - host.start):
                host.start, host.end = trim_span(text, q_start, q_end)
                host.type = "direct"
            continue
        # An overlapping reported clause and quote describe the same words: keep the quote. A reported
        # clause that runs on into a quote opened later ('said he saw no need, telling X that "we ..."')
        # keeps its own words before the quote.
        overlapping = []
        for c in [c for c in candidates if c.type == "indirect" and c.start < q_end and q_start < c.end]:
            lead = re.sub(r"(?:\s*\b(?:that|saying)\b|:)?[\s\W]*$", "", text[c.start : max(c.start, q_start - 1)])
            cut = trim_span(text, c.start, c.start + len(lead), drop_final_period=True)
            if _word_count(text[cut[0] : cut[1]]) >= 4:
                c.start, c.end = cut
            else:
                overlapping.append(c)
        sentence = seg.sentence_at(q_start)
        cue_source = overlapping[0] if overlapping else None
        for c in overlapping:
            candidates.remove(c)
        before = len(candidates)
        add(q_start, q_end, "direct", sentence.index, cue_source.cue if cue_source else None, cue_source.speaker_cue if cue_source else None, min_words)
        if len(candidates) > before and cue_source is None:
            verbs = _speech_verbs_near(seg, q_start, q_end, quotes)
            candidates[-1].speaker_cue = _direct_quote_cue(seg, q_start, q_end, quotes, verbs)
            candidates[-1].cue = verbs[0].text if verbs else None

    candidates.sort(key=lambda c: c.start)
    deduped: list[QuoteCandidate] = []
    for c in candidates:
        if deduped and c.start < deduped[-1].end and c.end <= deduped[-1].end:
            continue  # fully inside the previous candidate
        deduped.append(c)
    for i, c in enumerate(deduped):
        c.id = i
    return deduped


_TITLE_FUNCTION_WORDS = frozenset("of the a an and or in on at to for with by from as vs".split())


def looks_like_title(quoted: str) -> bool:
    """A short quoted name of a show, book, slogan or programme ("The Art of War", "Make It Work"):
    every word capitalised but function words, no clause punctuation. Titles are not statements."""
    words = re.findall(r"[A-Za-z][\w'\u2019-]*", quoted)
    if not words or len(words) > 10 or re.search(r"[,;:!?]", quoted.rstrip(". ")):
        return False
    content = [w for w in words if w.lower() not in _TITLE_FUNCTION_WORDS]
    return bool(content) and all(w[0].isupper() for w in content)


def _speech_verbs_near(seg: SegmentedArticle, q_start: int, q_end: int, quotes: Sequence[tuple[int, int]]) -> list[Token]:
    """Speech verbs in the quote's sentences but outside quoted words (`quotes`: all the article's quotes, this one too)."""
    first = seg.sentence_at(q_start)
    last = seg.sentence_at(max(q_start, q_end - 1))
    lo, hi = first.start, last.end
    # Include the sentence right after a quote that ends a sentence: '"...," he said.'
    following = [s for s in seg.sentences if s.index == last.index + 1 and s.paragraph == last.paragraph]
    if following and len(following[0].text) < 80:
        hi = following[0].end
    span = seg.doc.char_span(lo, hi, alignment_mode="expand")
    if span is None:
        return []
    return [t for t in span if t.lemma_ in SPEECH_VERBS and t.pos_ in ("VERB", "AUX") and not _in_spans(t.idx, quotes)]


# '"..." ― Ann Lee' / '"..." - Ann Lee, voter': a quote signed with a dash and a name that ends its line.
_SIGNATURE = re.compile(r'[\s.,]*["\u201d\u2019\']?[.,]?\s*[\u2015\u2014\u2013-]\s*([^\n]{3,80}?)\s*\.?[ \t]*$', re.MULTILINE)


def _signature_cue(seg: SegmentedArticle, q_start: int, q_end: int) -> SpeakerCue | None:
    """The person who signs a quote: a dash right after the closing mark, then a person's name (and
    perhaps a description after a comma), then the end of the line."""
    paragraph_end = seg.paragraphs[seg.sentence_at(q_start).paragraph][1]
    if (match := _SIGNATURE.match(seg.text, q_end, paragraph_end)) is None:
        return None
    name_start = match.start(1)
    for ent in _facts(seg.doc).ents:
        if ent.label_ == "PERSON" and ent.start_char == name_start:
            return _cue_from_entity(ent)
    return None


_AFTER_QUOTE = re.compile(r"""[\s"'\u201d\u2019\u00bb,.?!]*""")


def _subject_after_quote(seg: SegmentedArticle, q_start: int, q_end: int) -> Token | None:
    """'"...," Lee fumed', '"...?" she went on', '"...," Ann Lee, the mayor, tweeted': a name or "he"/"she"
    right after the quote (after its comma, or after a question or exclamation in the same sentence) that is
    the subject of a verb outside the quote. Whatever the verb, that subject is who said the quoted words."""
    doc = seg.doc
    paragraph_end = seg.paragraphs[seg.sentence_at(q_start).paragraph][1]
    gap = _AFTER_QUOTE.match(seg.text, q_end, paragraph_end).group(0)  # closing marks, punctuation, spaces
    name_at = q_end + len(gap)
    if name_at >= paragraph_end or not ("," in gap or (seg.text[q_end - 1] in "?!" and "." not in gap)):
        return None
    span = doc.char_span(name_at, paragraph_end, alignment_mode="expand")
    if span is None or not len(span):
        return None
    first = span[0]
    ent = next((e for e in _facts(doc).ents if e.start == first.i), None)
    named = ent if ent is not None and ent.label_ in ("PERSON", "ORG") else None
    if named is not None:
        subject = named.root
    elif first.lower_ in ("he", "she") or (ent is None and first.pos_ == "PROPN"):
        subject = first
        while subject.dep_ == "compound" and subject.head.pos_ == "PROPN" and subject.head.i > subject.i:
            subject = subject.head  # "Ann Lee": the name's head
    else:
        return None
    verb = subject.head
    if subject.dep_ == "nsubj" and verb.pos_ in ("VERB", "AUX") and verb.i > subject.i and not q_start <= verb.idx < q_end:
        return subject
    # A parse that hangs the name on the quote ('"...," Ann Lee, the mayor's aide, said of it'): the name is
    # still the subject when a verb without a subject of its own follows it, directly or after an appositive.
    end = named.end if named is not None else subject.i + 1
    if end >= len(doc):
        return None
    follower = doc[end]
    if follower.text == ",":
        closing = next((t for t in doc[end + 1 : min(end + 16, len(doc))] if t.text == "," or t.is_sent_end), None)
        follower = doc[closing.i + 1] if closing is not None and closing.text == "," and closing.i + 1 < len(doc) else follower
    if follower.pos_ != "VERB" or follower.tag_ not in ("VBD", "VBZ", "VBP") or any(c.dep_ in ("nsubj", "nsubjpass") for c in follower.children):
        return None
    return subject


def _signed_by_speech_verb(seg: SegmentedArticle, q_start: int, q_end: int) -> bool:
    """'"Rates matter," Lee said.': a quote that opens its sentence, then its own comma (or ? !) and closing
    mark, then a name or "he"/"she" as the subject of a speech verb. Scare quotes and titles inside a sentence
    ('At the fair "Harbor Days," Lee said') are not signed so."""
    sentence = seg.sentence_at(q_start)
    if seg.text[sentence.start : q_start].strip(" \t\n\"'\u201c\u2018\u00ab`"):
        return False
    subject = _subject_after_quote(seg, q_start, q_end)
    return subject is not None and subject.head.lemma_ in SPEECH_VERBS and subject.head.i > subject.i


def _subject_before_colon(seg: SegmentedArticle, q_start: int, quotes: Sequence[tuple[int, int]]) -> Token | None:
    """'Lee answered calmly: "..."', 'as Ann Lee put it: "..."': a quote after a colon is said
    by the subject (a name or "he"/"she") of the last verb before the colon in that sentence."""
    lead = re.search(r""":[\s"'\u201c\u2018\u00ab`]*$""", seg.text[max(0, q_start - 8) : q_start])
    if lead is None:
        return None
    colon = max(0, q_start - 8) + lead.start()
    sentence = seg.sentence_at(colon)
    span = seg.doc.char_span(sentence.start, colon, alignment_mode="contract")
    if span is None:
        return None
    for verb in reversed(span):
        if verb.pos_ not in ("VERB", "AUX") or _in_spans(verb.idx, quotes):
            continue
        subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
        if subject is not None and (subject.ent_type_ in ("PERSON", "ORG") or subject.pos_ == "PROPN" or subject.lower_ in ("he", "she")):
            return subject
        return None  # the nearest verb has no named subject: someone else's clause
    return None


def _direct_quote_cue(seg: SegmentedArticle, q_start: int, q_end: int, quotes: Sequence[tuple[int, int]], verbs: list[Token]) -> SpeakerCue | None:
    """Who said a quote no reported clause holds: its signature, the subject of a speech verb near it (`verbs`,
    from `_speech_verbs_near`), the name right after it, or the subject before a colon."""
    if (signed := _signature_cue(seg, q_start, q_end)) is not None:
        return signed
    for verb in verbs:
        subject = _subject_of(verb)
        if subject is not None and not (q_start <= subject.idx < q_end):
            sent = _sentence_of(seg.doc[verb.i])
            return speaker_cue_for(subject, sent)
    if (subject := _subject_after_quote(seg, q_start, q_end) or _subject_before_colon(seg, q_start, quotes)) is not None:
        return speaker_cue_for(subject, _sentence_of(subject))
    return None
