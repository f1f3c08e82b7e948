"""Chunking: paragraph windows that fit the model's comfortable context.

Rules (segmentation, candidates) always see the whole article; only the LLM's
prompt is windowed. Windows overlap by a paragraph so a quote at a boundary
still has the paragraph that names its speaker. A paragraph longer than a
window is split at sentence ends (at word boundaries if a sentence is longer
still), so no window is ever cut by the prompt-size cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHUNK_WORDS = 900
LLM_CHUNK_WORDS = 450  # the llm strategy's windows: room for the answer in a 4k context, and more recall per window
CHARS_PER_WORD = 7  # generous: English news averages about 6 characters a word with its space
OVERLAP_PARAGRAPHS = 1

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int


def words_for(max_chars: int, reserved_chars: int, *, ceiling: int = LLM_CHUNK_WORDS) -> int:
    """Window size in words so that the window plus `reserved_chars` of instructions stays within `max_chars`."""
    return max(50, min(ceiling, (max_chars - reserved_chars) // CHARS_PER_WORD))


def _pieces(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """A paragraph as spans of at most `max_words` words: whole sentences where they fit."""
    if len(text[start:end].split()) <= max_words:
        return [(start, end)]
    cuts = [start] + [start + m.end() for m in _SENTENCE_END.finditer(text[start:end])] + [end]
    units = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]
    pieces: list[tuple[int, int]] = []
    for a, b in units:
        words = [(m.start() + a, m.end() + a) for m in re.finditer(r"\S+", text[a:b])]
        for i in range(0, len(words), max_words):  # a sentence longer than a window: cut between words
            part = (words[i][0], words[min(i + max_words, len(words)) - 1][1])
            if pieces and len(text[pieces[-1][0] : part[1]].split()) <= max_words:
                pieces[-1] = (pieces[-1][0], part[1])
            else:
                pieces.append(part)
    return pieces


def chunk_article(text: str, paragraphs: list[tuple[int, int]], *, max_words: int = MAX_CHUNK_WORDS, overlap: int = OVERLAP_PARAGRAPHS) -> list[Chunk]:
    if not paragraphs:
        paragraphs = [(0, len(text))] if text.strip() else []
    if not paragraphs:
        return [Chunk(0, 0, len(text))]
    units = [piece for s, e in paragraphs for piece in _pieces(text, s, e, max_words)]
    words = [len(text[s:e].split()) for s, e in units]
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last, total = first, words[first]
        while last + 1 < len(units) and total + words[last + 1] <= max_words:
            last += 1
            total += words[last]
        chunks.append(Chunk(len(chunks), units[first][0], units[last][1]))
        if last + 1 >= len(units):
            break
        first = max(first + 1, last + 1 - overlap)
    return chunks


def chunk_for(chunks: list[Chunk], start: int, end: int) -> Chunk:
    """The chunk holding the span with the most context before it."""
    holding = [c for c in chunks if c.start <= start and end <= c.end]
    if not holding:
        return min(chunks, key=lambda c: abs(c.start - start))
    return max(holding, key=lambda c: start - c.start if start - c.start < (c.end - c.start) * 0.9 else -1)
