"""The model's answers change the record wherever the default strategy (`assist`) asks the model.

The questions: the type of an organisation whose name carries no telling word
(`pipeline.extract.ask_organisation_types`) and, while `pipeline/topics.py` asks it, the main topic when
the two keyword CAP leaders are close (`llm_tie_break`). On an article written so that the rules leave
the choice open:

* fast: the fake endpoint answers one valid option, then another, and the record follows each answer;
  every question the strategy asks must be one of those tested here;
* slow: the embedded model answers, and the record differs from the rules' own choice (organisation
  type; for the CAP tie-break no input was found where the 1.5B model did not pick the first option
  offered, i.e. the keyword leader).

A pipeline that ignored the model (or replaced its answers with a fixed default) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.ingest import parse_text_article
from pipeline.llm import EndpointConfig, StructuredLLM
from pipeline.process import extract_record
from schemas.records import ArticleRecord
from tests.support.fake_openai import Fault, FakeOpenAI, messages_text

ORG_QUESTION = "type of each organisation"  # text of the organisation-type question
TOPIC_QUESTION = "mainly about"  # text of the main-topic question

# Health (3) and education (6) keywords in the title and lead score exactly alike; "Corvantis" has no
# word that gives its type away.
TIED = """title: Hospital and school budgets debated

The regional council debated hospital funding and school funding on Monday. Doctors at the hospital and staff at the school asked for more money.

Shares of Corvantis rose 4 percent after Corvantis said it would supply equipment to the region. "We are ready to deliver the equipment this year," said Lena Marsh, a spokeswoman for Corvantis.

The council will vote next week.
"""


def extract(text: str, endpoint: EndpointConfig | None) -> ArticleRecord:
    article = parse_text_article(text, "article.txt")
    if endpoint is None:
        return extract_record(article, None, model="rules only", backend="rules")
    with StructuredLLM(endpoint) as llm:
        return extract_record(article, llm, model=endpoint.model, backend=endpoint.backend, strategy="assist")


def org_type(record: ArticleRecord, name: str) -> str:
    [org] = [o for o in record.organisations if o.name == name]
    return org.type


def codes(record: ArticleRecord) -> list[int]:
    return [area.code for area in record.policy_areas]


def test_the_rules_leave_the_organisation_type_to_the_model() -> None:
    assert org_type(extract(TIED, None), "Corvantis") == "other", "the rules' fallback type"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_every_question_of_the_default_strategy_is_covered_here(fake: FakeOpenAI) -> None:
    # A new question to the model needs its own test that the answer changes the record.
    extract(TIED, fake.endpoint_config(timeout_s=10.0))
    asked = [messages_text(r) for r in fake.requests]
    assert any(ORG_QUESTION in text for text in asked)
    assert [text[-300:] for text in asked if ORG_QUESTION not in text and TOPIC_QUESTION not in text] == []


@pytest.mark.parametrize("answer", ["company", "media"])
def test_organisation_type_is_the_model_answer(fake: FakeOpenAI, answer: str) -> None:
    fake.always(Fault("good", answer={"o1": answer}), match=ORG_QUESTION)
    record = extract(TIED, fake.endpoint_config(timeout_s=10.0))

    [question] = [messages_text(r) for r in fake.requests if ORG_QUESTION in messages_text(r)]
    assert "o1: Corvantis" in question and "o2:" not in question
    assert org_type(record, "Corvantis") == answer


def _with_topic_answer(fake: FakeOpenAI, main: int) -> list[int]:
    fake.always(Fault("good", answer={"main": main}), match=TOPIC_QUESTION)
    record = extract(TIED, fake.endpoint_config(timeout_s=10.0))
    assert any(TOPIC_QUESTION in messages_text(r) for r in fake.requests), "the tie-break question was not asked"
    return codes(record)


def test_the_default_strategy_does_not_ask_the_cap_tie_break(fake: FakeOpenAI) -> None:
    # Off by measurement (README): the 1.5B model always picked the first option offered.
    fake.always(Fault("good", answer={"main": 6}), match=TOPIC_QUESTION)
    assert codes(extract(TIED, fake.endpoint_config(timeout_s=10.0))) == [3, 6]
    assert not any(TOPIC_QUESTION in messages_text(r) for r in fake.requests)


def test_close_cap_call_follows_the_model_answer_when_asked(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    # The question stays in the code for stronger endpoints (`pipeline.topics.ASK_TIE_BREAK`).
    monkeypatch.setattr("pipeline.topics.ASK_TIE_BREAK", True)
    answered_6 = _with_topic_answer(fake, 6)
    assert codes(extract(TIED, None)) == [3, 6], "a keyword tie, listed in code order"
    assert answered_6 == [6, 3]
    fake.clear()
    assert _with_topic_answer(fake, 3) == [3, 6]
    fake.clear()
    assert _with_topic_answer(fake, 16) == [3, 6], "an answer outside the two options offered is ignored"


# --------------------------------------------------------------------------- the embedded model


@pytest.fixture(scope="module")
def embedded() -> Iterator[EndpointConfig]:
    from pipeline.backends.llama_server import embedded_endpoint

    with embedded_endpoint() as endpoint:
        yield endpoint


@pytest.mark.slow
def test_embedded_model_types_an_organisation_the_rules_cannot(embedded: EndpointConfig) -> None:
    assert org_type(extract(TIED, None), "Corvantis") == "other"
    assert org_type(extract(TIED, embedded), "Corvantis") == "company"  # "Shares of Corvantis rose..."
