"""Chunking: paragraph windows that fit the model's comfortable context.

Rules (segmentation, candidates) always see the whole article; only the LLM's
prompt is windowed. Windows overlap by a paragraph so a quote at a boundary
still has the paragraph that names its speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CHUNK_WORDS = 900
OVERLAP_PARAGRAPHS = 1


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int


def chunk_article(text: str, paragraphs: list[tuple[int, int]], *, max_words: int = MAX_CHUNK_WORDS, overlap: int = OVERLAP_PARAGRAPHS) -> list[Chunk]:
    if not paragraphs:
        return [Chunk(0, 0, len(text))]
    words = [len(text[s:e].split()) for s, e in paragraphs]
    chunks: list[Chunk] = []
    first = 0
    while first < len(paragraphs):
        last, total = first, words[first]
        while last + 1 < len(paragraphs) and total + words[last + 1] <= max_words:
            last += 1
            total += words[last]
        chunks.append(Chunk(len(chunks), paragraphs[first][0], paragraphs[last][1]))
        if last + 1 >= len(paragraphs):
            break
        first = max(first + 1, last + 1 - overlap)
    return chunks


def chunk_for(chunks: list[Chunk], start: int, end: int) -> Chunk:
    """The chunk holding the span with the most context before it."""
    holding = [c for c in chunks if c.start <= start and end <= c.end]
    if not holding:
        return min(chunks, key=lambda c: abs(c.start - start))
    return max(holding, key=lambda c: start - c.start if start - c.start < (c.end - c.start) * 0.9 else -1)
