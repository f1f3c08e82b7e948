"""CAP coding: the shipped classifier, its file format, and what the stage emits for an article.

Texts here are written for these tests (no corpus or dev article is copied).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.segment import segment
from pipeline.topics import (
    MODEL_FILE,
    ArticleTopics,
    TopicModel,
    article_topics,
    code_topics,
    llm_tie_break,
    load_topic_model,
    topic_scores,
)
from schemas.records import CAP_MAJOR_TOPICS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_topics import MEDIA_CODES, Headline, train  # noqa: E402

HEALTH_ABROAD = (
    "Hospitals in Ruritania are running out of nurses as flu cases climb, the health ministry said on Tuesday.\n\n"
    "Patients wait up to nine hours in emergency wards, and doctors say vaccination rates have fallen.\n\n"
    "The minister promised to hire 2,000 nurses and to open clinics in rural districts by winter."
)

SPORT = (
    "The visitors won the championship final 3-1 on Sunday night after two late goals.\n\n"
    "The coach praised his players and said the season had been the best in a decade."
)


def test_shipped_model_is_small_plain_arrays_with_policy_and_media_codes() -> None:
    assert MODEL_FILE.stat().st_size < 5_000_000
    model = TopicModel.load(MODEL_FILE)  # allow_pickle=False inside: a pickled file would fail here
    codes = set(model.classes.tolist())
    assert set(CAP_MAJOR_TOPICS) <= codes and MEDIA_CODES <= codes
    probs = model.probabilities(["budget deficit grows as tax receipts fall", ""])
    assert np.allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("headline", "code"),
    [
        ("Nurses warn hospitals cannot cope with flu patients", 3),
        ("School board votes to lengthen the teaching day for pupils", 6),
        ("Police arrest suspect after armed robbery at jewellery store", 12),
        ("Central bank raises interest rates as inflation climbs", 1),
    ],
)
def test_clear_headlines_get_their_topic(headline: str, code: int) -> None:
    assert load_topic_model().predict([headline], policy_only=True)[0] == code


def test_policy_only_prediction_never_returns_a_media_code() -> None:
    model = load_topic_model()
    texts = ["Rain and wind expected for the weekend", "Yankees beat Red Sox in extra innings", "Inside today's paper"]
    assert all(int(c) in CAP_MAJOR_TOPICS for c in model.predict(texts, policy_only=True))


def test_a_model_file_of_another_format_is_refused(tmp_path: Path) -> None:
    with np.load(MODEL_FILE, allow_pickle=False) as data:
        arrays = dict(data)
    arrays["format_version"] = np.array(1)  # format 1 models were fitted on texts with names blanked
    np.savez_compressed(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="format 1"):
        TopicModel.load(tmp_path / "old.npz")


def test_a_health_story_abroad_is_health_not_international_affairs() -> None:
    seg = segment(HEALTH_ABROAD)
    codes, evidence = code_topics(seg, "Ruritania hospitals short of nurses as flu spreads")
    assert codes[0] == 3
    assert 19 not in codes


def test_codes_are_cap_topics_with_sentence_evidence() -> None:
    for text, title in ((HEALTH_ABROAD, "Nurse shortage"), (SPORT, "Champions again")):
        seg = segment(text)
        codes, evidence = code_topics(seg, title)
        assert codes and all(code in CAP_MAJOR_TOPICS for code in codes)
        assert len(codes) == len(set(codes)) <= 2
        sentence_spans = {(s.start, s.end) for s in seg.sentences}
        for code in codes:
            assert evidence[code], f"no evidence for {code}"
            assert set(evidence[code]) <= sentence_spans


def test_an_article_without_keyword_hits_is_coded_by_the_classifier() -> None:
    seg = segment(SPORT)
    assert not any(topic_scores(seg, "Champions again").values())
    topics = article_topics(seg, "Champions again")
    codes, _ = code_topics(seg, "Champions again")
    assert codes and codes[0] == topics.ranked()[0]
    assert topics.shares[codes[0]] > 1 / len(CAP_MAJOR_TOPICS)  # a reading, not a uniform default


def test_shares_rank_the_main_topic_first() -> None:
    seg = segment(HEALTH_ABROAD)
    topics = article_topics(seg, None)
    assert abs(sum(topics.shares.values()) - 1.0) < 1e-6
    assert topics.ranked()[0] == code_topics(seg, None)[0][0]


def test_training_round_trips_through_the_saved_file(tmp_path: Path) -> None:
    rows = [
        Headline(str(i), code, 2000, text, "article")
        for i, (code, text) in enumerate(
            [(3, f"hospital doctors treat patients case {n}") for n in range(6)]
            + [(6, f"school teachers and pupils lesson {n}") for n in range(6)]
            + [(29, f"team wins league game score {n}") for n in range(6)]
        )
    ]
    model = train(rows)  # also checks the model's own probabilities against scikit-learn's
    model.save(tmp_path / "m.npz")
    loaded = TopicModel.load(tmp_path / "m.npz")
    texts = ["doctors at the hospital", "pupils at school", "the team won the game"]
    assert list(loaded.predict(texts)) == [3, 6, 29]
    assert np.allclose(loaded.probabilities(texts), model.probabilities(texts), atol=1e-3)
    assert list(loaded.predict(["the team won the game"], policy_only=True))[0] in (3, 6)


class _Answers:
    """Stands in for StructuredLLM: answers the main-topic question with a fixed code, counts calls."""

    def __init__(self, main: int) -> None:
        self.main, self.calls = main, 0

    def ask(self, system: str, question: str, response_model: type, **_: object) -> object:
        self.calls += 1
        return response_model(main=self.main)


def _topics(shares: dict[int, float]) -> ArticleTopics:
    return ArticleTopics(shares=shares, sentence_lift=np.zeros((0, len(shares))), codes=list(shares))


@pytest.mark.parametrize(("answer", "expected"), [(6, [6, 3]), (3, [3, 6]), (16, [3, 6])])
def test_tie_break_follows_the_model_only_between_close_leaders(answer: int, expected: list[int]) -> None:
    llm = _Answers(answer)
    assert llm_tie_break(llm, "text", None, _topics({3: 0.46, 6: 0.44, 1: 0.10}), [3, 6]) == expected  # type: ignore[arg-type]
    assert llm.calls == 1


def test_tie_break_does_not_ask_about_a_clear_lead() -> None:
    llm = _Answers(6)
    assert llm_tie_break(llm, "text", None, _topics({3: 0.6, 6: 0.3, 1: 0.1}), [3, 6]) == [3, 6]  # type: ignore[arg-type]
    assert llm.calls == 0
