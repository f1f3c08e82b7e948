"""Paragraph windows for the LLM: complete coverage, overlap, and a home for every span."""

from __future__ import annotations

from pipeline.chunk import chunk_article, chunk_for
from pipeline.segment import paragraph_spans


def long_article(paragraphs: int = 60, words: int = 45) -> str:
    return "\n\n".join(" ".join(f"p{i}w{j}" for j in range(words)) + "." for i in range(paragraphs))


def test_short_article_is_one_chunk() -> None:
    text = long_article(5)
    chunks = chunk_article(text, paragraph_spans(text))
    assert len(chunks) == 1 and chunks[0].start == 0 and chunks[0].end == len(text)


def test_long_article_is_covered_to_its_last_paragraph() -> None:
    text = long_article(60)  # ~2,700 words
    paragraphs = paragraph_spans(text)
    chunks = chunk_article(text, paragraphs, max_words=500)
    assert len(chunks) > 1
    assert chunks[0].start == paragraphs[0][0]
    assert chunks[-1].end == paragraphs[-1][1]
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "consecutive windows overlap by a paragraph"
    for c in chunks:
        assert len(text[c.start : c.end].split()) <= 500


def test_every_paragraph_has_a_chunk_and_chunk_for_finds_it() -> None:
    text = long_article(40)
    paragraphs = paragraph_spans(text)
    chunks = chunk_article(text, paragraphs, max_words=300)
    for start, end in paragraphs:
        c = chunk_for(chunks, start, end)
        assert c.start <= start and end <= c.end


def test_chunk_for_prefers_the_window_with_context_before_the_span() -> None:
    text = long_article(20)
    paragraphs = paragraph_spans(text)
    chunks = chunk_article(text, paragraphs, max_words=200, overlap=1)
    # A paragraph at the start of window 2 is also the last paragraph of window 1: window 1 has the context.
    second = chunks[1]
    start, end = next(p for p in paragraphs if p[0] == second.start)
    assert chunk_for(chunks, start, end).index == 0


def test_oversized_paragraph_still_gets_its_own_chunk() -> None:
    text = long_article(3, words=50) + "\n\n" + " ".join(f"big{j}" for j in range(1200)) + "."
    paragraphs = paragraph_spans(text)
    chunks = chunk_article(text, paragraphs, max_words=300)
    assert chunks[-1].end == paragraphs[-1][1]
