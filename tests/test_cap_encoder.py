"""The CAP stage's fine-tuned encoder (pipeline/cap_encoder.py) and how pipeline/topics.py reads articles with it.

Texts here are written for these tests (no corpus or dev article is copied).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pipeline.cap_encoder import ENCODER_FILE, HEAD_FILE, MAX_TOKENS, CapEncoder, load_cap_encoder
from pipeline.segment import segment
from pipeline.topics import article_topics, classifier_probabilities, load_topic_model
from schemas.records import CAP_MAJOR_TOPICS

HEADLINES = {
    "Nurses warn hospitals cannot cope with flu patients": 3,
    "School board votes to lengthen the teaching day for pupils": 6,
    "Police arrest suspect after armed robbery at jewellery store": 12,
    "Central bank raises interest rates as inflation climbs": 1,
    "Troops and missiles sent to the border as the army mobilises": 16,
}


def test_shipped_encoder_is_an_8bit_gguf_with_a_plain_array_head_over_the_linear_models_codes() -> None:
    assert ENCODER_FILE.read_bytes()[:4] == b"GGUF"
    assert ENCODER_FILE.stat().st_size < 30_000_000  # 8-bit: the float32 encoder is 90 MB
    encoder = CapEncoder.load()  # allow_pickle=False inside
    assert set(encoder.classes.tolist()) == set(load_topic_model().classes.tolist())
    assert encoder.weight.shape == (len(encoder.classes), 384)


def test_the_encoder_alone_reads_clear_headlines() -> None:
    encoder = load_cap_encoder()
    probs = encoder.probabilities(list(HEADLINES))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert [int(c) for c in encoder.classes[probs.argmax(axis=1)]] == list(HEADLINES.values())


def test_the_classifier_averages_both_parts_in_the_linear_models_columns() -> None:
    model, encoder = load_topic_model(), load_cap_encoder()
    texts = list(HEADLINES)
    probs = classifier_probabilities(texts)
    assert probs.shape == (len(texts), len(model.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    linear = model.probabilities(texts)
    tuned = encoder.probabilities(texts)[:, [list(encoder.classes).index(c) for c in model.classes]]
    assert np.allclose(probs, 0.5 * linear + 0.5 * tuned, atol=1e-5)
    assert [int(c) for c in model.classes[probs.argmax(axis=1)]] == list(HEADLINES.values())


def test_a_text_longer_than_the_encoder_reads_is_cut_at_a_word_boundary() -> None:
    encoder = load_cap_encoder()
    head = "Central bank raises interest rates as inflation climbs"
    text = head + " " + " ".join(f"and the committee met again on day {n}" for n in range(40))
    fitted = encoder._fitted(text)
    words = fitted.split()
    assert text.startswith(fitted) and fitted.startswith(head)
    llm = encoder._model()
    assert len(llm.tokenize(fitted.encode())) <= MAX_TOKENS
    assert len(llm.tokenize(" ".join(text.split()[: len(words) + 1]).encode())) > MAX_TOKENS  # the longest prefix
    assert np.allclose(encoder.probabilities([text]), encoder.probabilities([fitted]))


def test_odd_texts_still_read() -> None:
    encoder = load_cap_encoder()
    probs = encoder.probabilities(["x" * 3000, "", "   ", "Zölle auf Stahl — 25 %"])
    assert probs.shape == (4, len(encoder.classes)) and np.allclose(probs.sum(axis=1), 1.0)


def test_concurrent_calls_give_the_answers_of_sequential_ones() -> None:
    encoder = load_cap_encoder()
    texts = list(HEADLINES) * 3
    expected = encoder.probabilities(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: encoder.probabilities([t])[0], texts))
    assert np.allclose(np.array(got), expected, atol=1e-6)


def test_a_head_of_another_format_is_refused(tmp_path: Path) -> None:
    with np.load(HEAD_FILE, allow_pickle=False) as data:
        arrays = dict(data)
    arrays["format_version"] = np.array(99)
    np.savez(tmp_path / "head.npz", **arrays)
    with pytest.raises(ValueError, match="format 99"):
        CapEncoder.load(ENCODER_FILE, tmp_path / "head.npz")


def test_a_missing_encoder_file_says_where_it_belongs(tmp_path: Path) -> None:
    encoder = CapEncoder.load(tmp_path / "gone.gguf", HEAD_FILE)
    with pytest.raises(FileNotFoundError, match="pipeline/resources"):
        encoder.probabilities(["Budget talks stall"])


class _RecordingEncoder:
    """Stands in for CapEncoder: uniform probabilities, remembers what it read."""

    def __init__(self) -> None:
        self.classes = load_topic_model().classes
        self.read: list[str] = []

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        self.read.extend(texts)
        return np.full((len(texts), len(self.classes)), 1 / len(self.classes))


def test_an_article_is_read_by_the_encoder_as_title_and_lead() -> None:
    text = "The visitors won the final 3-1 on Sunday night.\n\nThe coach praised his players after the game."
    recorder = _RecordingEncoder()
    topics = article_topics(segment(text), "Champions again", encoder=recorder)  # type: ignore[arg-type]
    assert recorder.read == ["Champions again\nThe visitors won the final 3-1 on Sunday night."]
    assert set(topics.shares) == set(CAP_MAJOR_TOPICS)
