"""The `llm` strategy: the model extracts, code grounds and checks.

The oracle-replay test runs the production path (`openai` + `instructor` +
`extract_record(strategy="llm")`) against `tests/support/oracle_server.py`,
which answers from the dev set's gold files with the noise real models make.
It proves the grounding, speaker resolution, merging and counting keep what is
true and drop what is invented; it says nothing about how well any real model
reads an article.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluate import evaluate, load_gold
from pipeline.ingest import Article, read_articles
from pipeline.llm import StructuredLLM
from pipeline.llm_extract import align_quote, align_text
from pipeline.process import extract_record
from pipeline.strategy import resolve_strategy
from schemas.records import ArticleRecord
from tests.support.fake_openai import messages_text
from tests.support.oracle_server import INVENTED_SPEAKER, OracleServer, locate
from tests.support.paths import EVAL_DEV, require_eval_dev


def _extract(articles: list[Article], server: OracleServer, **endpoint: object) -> list[ArticleRecord]:
    config = server.endpoint_config(**endpoint)
    records = []
    for article in articles:
        with StructuredLLM(config) as llm:
            records.append(extract_record(article, llm, model="oracle", backend=config.backend, strategy="llm"))
    return records


@pytest.fixture(scope="module")
def dev_replay() -> tuple[list[Article], list[ArticleRecord], OracleServer]:
    require_eval_dev()
    articles, failures = read_articles(EVAL_DEV / "articles")
    assert not failures and len(articles) == 5
    gold = load_gold(EVAL_DEV / "gold")
    with OracleServer([(a.text, gold[a.source_file]) for a in articles]) as server:
        records = _extract(articles, server)
    return articles, records, server


# --------------------------------------------------------------------------- oracle replay


def test_oracle_replay_scores_like_the_gold_despite_the_noise(dev_replay) -> None:
    _, records, _ = dev_replay
    report = evaluate([json.loads(r.model_dump_json()) for r in records], EVAL_DEV / "gold").to_json()["total"]
    assert report["quote_speaker"]["f1"] >= 0.95, report["quote_speaker"]
    assert report["organisations"]["f1"] >= 0.95, report["organisations"]
    assert report["exact_span_share"] == 1.0


def test_every_quote_is_grounded_and_nothing_invented_reaches_a_record(dev_replay) -> None:
    articles, records, server = dev_replay
    assert {i.kind for i in server.invented} == {"paraphrase", "unmentioned_speaker", "second_spelling"}
    for index, record in enumerate(records):
        text = record.article.text
        for quote in record.quotes:
            assert text[quote.span.start : quote.span.end] == quote.text
            assert quote.speaker.name != INVENTED_SPEAKER
        for item in (i for i in server.invented if i.article == index and i.kind == "paraphrase"):
            assert locate(item.text, text) is None, "the paraphrase is not article text"
            assert all(item.text not in q.text for q in record.quotes)


def test_invented_items_are_dropped_and_counted_per_article(dev_replay) -> None:
    _, records, server = dev_replay
    for index, record in enumerate(records):
        items = record.provenance.model_items
        assert items is not None and record.provenance.strategy == "llm"
        invented = [i for i in server.invented if i.article == index]
        paraphrases = sum(i.kind == "paraphrase" for i in invented)
        unmentioned = sum(i.kind == "unmentioned_speaker" for i in invented)
        assert items.quotes.dropped.get("not_in_text", 0) == paraphrases >= 1
        assert items.quotes.dropped.get("speaker_not_in_article", 0) == unmentioned >= 1
        # A second spelling of an organisation is merged, never a second organisation.
        assert items.organisations.merged >= sum(i.kind == "second_spelling" for i in invented)
        assert len({o.id for o in record.organisations}) == len(record.organisations)
        for kind in (items.quotes, items.organisations, items.policy_areas):
            assert kind.proposed == kind.kept + kind.merged + sum(kind.dropped.values())
        assert items.quotes.kept == len(record.quotes)
        assert items.organisations.kept <= len(record.organisations)


def test_duplicates_from_overlapping_chunks_are_merged(dev_replay) -> None:
    _, records, _ = dev_replay
    assert sum(r.provenance.model_items.quotes.merged for r in records) >= 1  # the windows overlap on the dev set
    for record in records:
        spans = sorted((q.span.start, q.span.end) for q in record.quotes)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)), "overlapping quotes"


def test_fuzzy_alignment_is_used_and_reported(dev_replay) -> None:
    _, records, _ = dev_replay
    assert sum(r.provenance.model_items.quotes.aligned_fuzzily for r in records) >= 1


def test_one_invalid_answer_per_article_is_reasked(dev_replay) -> None:
    _, records, _ = dev_replay
    for record in records:
        assert record.provenance.usage.retries == 1
        assert all(area.code != 11 for area in record.policy_areas)


# --------------------------------------------------------------------------- a long article, chunk by chunk

NAMES = ["Amara Quist", "Bruno Feld", "Celia Marsh", "Dmitri Vale", "Esther Holm", "Farid Ostrow", "Greta Lunde", "Hugo Pell"]


def long_article() -> tuple[str, dict]:
    """About 3,000 words in 24 paragraphs, each quoting one named source; the gold of every quote."""
    paragraphs, quotes = [], []
    for i in range(24):
        name = NAMES[i % len(NAMES)]
        filler = " ".join(
            f"Paragraph {i} reviews the regional figures for sector {k} and the revisions published this week by the statistics office."
            for k in range(6)
        )
        said = f"output in district {i} would recover within {i + 2} quarters if the grid upgrade went ahead"
        direct = f"We have planned for round {i} of the upgrade and we will deliver it on time"
        paragraphs.append(f"{filler} {name}, an engineer at the Northgate Grid Authority, said {said}. \u201c{direct},\u201d {name.split()[1]} said.")
        quotes += [{"speaker": name, "text": said, "type": "indirect"}, {"speaker": name, "text": direct, "type": "direct"}]
    gold = {
        "quotes": quotes,
        "organisations": [{"name": "Northgate Grid Authority", "aliases": [], "type": "government", "country": None}],
        "policy_areas": [{"code": 8}],
        "speakers": [{"name": n, "kind": "person", "role": "engineer", "organisation": "Northgate Grid Authority"} for n in NAMES],
    }
    return "title: Grid upgrade\npublished: 2026-01-15\n\n" + "\n\n".join(paragraphs) + "\n", gold


def test_long_article_is_read_chunk_by_chunk_within_budget_and_border_quotes_kept_once(tmp_path: Path) -> None:
    raw, gold = long_article()
    (tmp_path / "long.txt").write_text(raw, encoding="utf-8")
    [article], _ = read_articles(tmp_path)
    assert len(article.text.split()) >= 2500
    max_chars, budget = 6000, 200_000
    with OracleServer([(article.text, gold)], noise=False) as server:
        [record] = _extract([article], server, max_prompt_chars=max_chars, token_budget=budget)
    assert server.chunk_requests >= 4, "the article is asked about in several windows"
    assert max(server.prompt_chars) <= max_chars, "every window fits the prompt cap: nothing is cut"
    assert all("article cut here" not in json.dumps(body) for body in server.requests)
    usage = record.provenance.usage
    assert usage.prompt_tokens + usage.completion_tokens <= budget
    assert usage.calls == server.chunk_requests
    found = [(q.speaker.name, q.text) for q in record.quotes]
    for quote in gold["quotes"]:
        hits = [name for name, text in found if quote["text"] in text]
        assert hits == [quote["speaker"]], f"{quote['text']!r} found {len(hits)} times: {hits}"
    assert record.provenance.model_items.quotes.merged >= 1, "quotes in the overlapping paragraphs came twice and were merged"


# --------------------------------------------------------------------------- alignment and strategy choice

TEXT = "The minister said that \u201cthe budget will rise by five percent next year,\u201d and added that schools come first."


def test_align_exact_ignores_mark_style_and_trims_marks() -> None:
    found = align_quote('"the budget will rise by five percent next year,"', TEXT, (0, len(TEXT)))
    assert found is not None and not found.fuzzy
    assert TEXT[found.start : found.end] == "the budget will rise by five percent next year"


def test_align_fuzzy_accepts_a_changed_letter_but_not_a_paraphrase() -> None:
    fuzzy = align_text("the budget will rise by five precent next year", TEXT)
    assert fuzzy is not None and fuzzy.fuzzy and TEXT[fuzzy.start : fuzzy.end] == "the budget will rise by five percent next year"
    assert align_text("spending is set to grow by about five percent", TEXT) is None


def test_align_anchors_span_from_first_to_last_words() -> None:
    found = align_quote("the budget will rise ... percent next year", TEXT, (0, len(TEXT)))
    assert found is not None and TEXT[found.start : found.end] == "the budget will rise by five percent next year"


@pytest.mark.parametrize(
    ("requested", "rules_only", "remote", "expected"),
    [(None, False, False, "assist"), (None, False, True, "llm"), ("llm", False, False, "llm"), (None, True, True, "rules"), ("RULES", False, True, "rules")],
)
def test_strategy_defaults(requested, rules_only, remote, expected, monkeypatch) -> None:
    monkeypatch.delenv("NEWS_EXTRACTION_STRATEGY", raising=False)
    assert resolve_strategy(requested, rules_only=rules_only, remote=remote) == expected


def test_strategy_from_environment_and_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("NEWS_EXTRACTION_STRATEGY", "llm")
    assert resolve_strategy(None) == "llm"
    assert resolve_strategy("assist") == "assist"
    with pytest.raises(ValueError, match="unknown extraction strategy"):
        resolve_strategy("magic")
    with pytest.raises(ValueError, match="conflicts"):
        resolve_strategy("llm", rules_only=True)


def test_compact_answers_of_slow_local_models_are_grounded_from_their_anchors() -> None:
    require_eval_dev()
    articles, _ = read_articles(EVAL_DEV / "articles")
    gold = load_gold(EVAL_DEV / "gold")
    article = articles[2]
    with OracleServer([(article.text, gold[article.source_file])], noise=False) as server:
        [record] = _extract([article], server, backend="embedded-llama.cpp")
        assert all("topics" in messages_text(body) and not body.get("tools") for body in server.requests), "compact schema, JSON mode"
    [scores] = [a for a in evaluate([json.loads(record.model_dump_json())], EVAL_DEV / "gold").articles if a.source_file == article.source_file]
    assert scores.quote_speaker.f1 >= 0.9, scores.quote_speaker
    assert all(record.article.text[q.span.start : q.span.end] == q.text for q in record.quotes)
