"""Tests of the evaluation stage against the dev gold set in /work/shared/eval-dev."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

# Let `.venv/bin/pytest` import the project packages without an installed package or conftest.

from pipeline.evaluate import (  # noqa: E402
    Counts,
    EvaluationReport,
    PersonLinks,
    evaluate,
    gold_as_records,
    load_gold,
    quotes_match,
    render_report,
    role_matches,
    score_article,
    speaker_matches,
    split_article,
)
from schemas.records import ArticleRecord, organisation_id  # noqa: E402
from tests.support.paths import EVAL_DEV, require_eval_dev  # noqa: E402

# EVAL_DEV: ../shared/eval-dev beside the checkout (tests/support/paths.py)
GOLD_DIR = EVAL_DEV / "gold"
ARTICLES_DIR = EVAL_DEV / "articles"

SEED = "00_new_productive_forces.txt"
TOBACCO = "02_china_tobacco_factories_ban.txt"
LAMB = "03_eu_british_lamb_boycott.txt"
TOTAL_QUOTES = 62
TOTAL_ORGANISATIONS = 38

@pytest.fixture(autouse=True)
def _needs_eval_dev() -> None:
    require_eval_dev()


@pytest.fixture(scope="module")
def _perfect_records() -> list[dict]:
    return gold_as_records(GOLD_DIR, ARTICLES_DIR)


@pytest.fixture
def records(_perfect_records: list[dict]) -> list[dict]:
    """A fresh, mutable copy of the gold-equal record set."""
    return copy.deepcopy(_perfect_records)


def by_file(records: list[dict], source_file: str) -> dict:
    return next(r for r in records if r["article"]["source_file"] == source_file)


def article(report: EvaluationReport, source_file: str):
    return next(a for a in report.articles if a.source_file == source_file)


# --------------------------------------------------------------------------- perfect records


def test_gold_records_are_valid_and_cover_the_gold(records: list[dict]) -> None:
    assert [r["article"]["source_file"] for r in records] == sorted(load_gold(GOLD_DIR))
    for record in records:
        ArticleRecord.model_validate(record)
    lamb = by_file(records, LAMB)
    assert lamb["article"]["title"] == "EU rejects German call to boycott British lamb"
    assert lamb["article"]["published"] == "1996-08-22"
    assert lamb["article"]["text"].startswith("BRUSSELS 1996-08-22\n\nThe European Commission said")
    assert sum(len(r["quotes"]) for r in records) == TOTAL_QUOTES
    assert sum(len(r["organisations"]) for r in records) == TOTAL_ORGANISATIONS


def test_gold_records_score_one_everywhere(records: list[dict]) -> None:
    report = evaluate(records, GOLD_DIR)
    assert len(report.articles) == 5
    for scores in report.articles:
        assert scores.has_record
        for counts in (scores.quote_text, scores.quote_speaker, scores.organisations, scores.policy_areas):
            assert (counts.precision, counts.recall, counts.f1) == (1.0, 1.0, 1.0)
        assert scores.main_topic_correct
        assert scores.exact_span_share == 1.0
    assert report.quote_text == Counts(TOTAL_QUOTES, TOTAL_QUOTES, TOTAL_QUOTES)
    assert report.quote_speaker == Counts(TOTAL_QUOTES, TOTAL_QUOTES, TOTAL_QUOTES)
    assert report.organisations == Counts(TOTAL_ORGANISATIONS, TOTAL_ORGANISATIONS, TOTAL_ORGANISATIONS)
    assert report.policy_areas == Counts(9, 9, 9)
    assert report.main_topic_accuracy == 1.0
    assert report.exact_span_share == 1.0
    assert report.ignored_records == [] and report.missing_records == []


# --------------------------------------------------------------------------- quotes


def test_dropping_one_gold_quote_lowers_recall_by_one_gold_quote(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    assert len(tobacco["quotes"]) == 10
    del tobacco["quotes"][4]
    report = evaluate(records, GOLD_DIR)
    scores = article(report, TOBACCO)
    assert scores.quote_text == Counts(9, 9, 10)
    assert scores.quote_text.recall == pytest.approx(0.9)
    assert scores.quote_text.precision == 1.0
    assert scores.missed_quotes == ["it had not approved the deal"]
    assert report.quote_text.recall == pytest.approx((TOTAL_QUOTES - 1) / TOTAL_QUOTES)
    assert report.quote_speaker.recall == pytest.approx((TOTAL_QUOTES - 1) / TOTAL_QUOTES)


def test_wrong_speaker_counts_for_text_but_not_for_speaker(records: list[dict]) -> None:
    quote = by_file(records, TOBACCO)["quotes"][0]
    assert quote["speaker"]["name"] == "Xing Wangli"
    quote["speaker"]["name"] = "Lu Ting"
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.quote_text == Counts(10, 10, 10)
    assert scores.quote_speaker == Counts(9, 10, 10)
    assert scores.quote_speaker.precision == pytest.approx(0.9)
    assert [(w.predicted, w.gold) for w in scores.wrong_speakers] == [("Lu Ting", "Xing Wangli")]


def test_surname_only_speaker_counts_as_correct(records: list[dict]) -> None:
    seed = by_file(records, SEED)
    pan_quotes = [q for q in seed["quotes"] if q["speaker"]["name"] == "Pan Helin"]
    assert len(pan_quotes) == 3
    for quote in pan_quotes:
        quote["speaker"]["name"] = "Mr. Pan"
    assert article(evaluate(records, GOLD_DIR), SEED).quote_speaker == Counts(18, 18, 18)
    for quote in pan_quotes:
        quote["speaker"]["name"] = "Mr. Li"  # another person's surname
    assert article(evaluate(records, GOLD_DIR), SEED).quote_speaker == Counts(15, 18, 18)


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("Mr. Pan", "Pan Helin", True),  # family name first
        ("Helin", "Pan Helin", True),
        ("Jones", "John Lloyd Jones", True),  # family name last
        ("President Xi", "Xi Jinping", True),
        ("Van der Pas", "Nikolaus van der Pas", True),
        ("LOYOLA DE PALACIO", "Loyola de Palacio", True),
        ("Li Qiang", "Li Dongsheng", False),
        ("John Smith", "John Lloyd Jones", False),
        ("", "Pan Helin", False),
    ],
)
def test_person_speaker_rule(predicted: str, gold: str, expected: bool) -> None:
    assert speaker_matches(predicted, gold) is expected


def test_organisation_speaker_rule() -> None:
    organisations = load_gold(GOLD_DIR)[TOBACCO]["organisations"]
    gold = "State Tobacco Monopoly Administration"
    assert speaker_matches("STMA", gold, organisations)  # alias of the gold speaker's organisation
    assert speaker_matches("state tobacco monopoly administration.", gold, organisations)
    assert not speaker_matches("China Daily", gold, organisations)
    assert not speaker_matches("Administration", gold, organisations)  # no surname rule for organisations


def test_boundary_and_quote_mark_differences_still_match() -> None:
    gold = "it had not negotiated with the STMC, and secured approval from \"the highest levels of government\""
    predicted = "that it had not negotiated with the STMC, and secured approval from “the highest levels of government”."
    assert quotes_match(predicted, gold)
    assert quotes_match("China won’t allow any new tobacco factories", "China won't allow any new  tobacco\nfactories")
    # containment: a 3-token fragment inside a long quote matches, a 2-token one does not
    long = "the fiscal stimulus package will likely focus on areas including funding for a trade-in program"
    assert quotes_match("fiscal stimulus package", long)
    assert not quotes_match("stimulus package", long)
    # Jaccard: 3 shared of 5 distinct tokens = 0.6 matches, 2 of 6 = 0.33 does not
    assert quotes_match("alpha beta gamma delta", "alpha beta gamma epsilon")
    assert not quotes_match("alpha beta gamma delta", "alpha beta zeta epsilon")


def test_shared_claim_duplicated_per_speaker_pairs_with_the_right_speaker() -> None:
    text = "Trump and Sanders have both argued that trade deals cost jobs."
    claim = "trade deals cost jobs"
    gold = {
        "source_file": "x.txt",
        "quotes": [
            {"speaker": "Bernie Sanders", "text": claim, "type": "indirect"},
            {"speaker": "Donald Trump", "text": claim, "type": "indirect"},
        ],
    }
    start = text.index(claim)
    span = {"start": start, "end": start + len(claim)}
    record = {
        "article": {"source_file": "x.txt", "text": text},
        "quotes": [
            {"text": claim, "type": "indirect", "speaker": {"name": name}, "span": span}
            for name in ("Donald Trump", "Bernie Sanders")
        ],
    }
    scores = score_article(record, gold)
    assert scores.quote_text == Counts(2, 2, 2)
    assert scores.quote_speaker == Counts(2, 2, 2)
    assert scores.wrong_speakers == []


def test_unmatched_quote_without_speaker_name_is_not_counted_against_precision(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    invented = {
        "text": "smoking is fashionable",
        "type": "indirect",
        "span": {"start": 0, "end": 3},
    }
    tobacco["quotes"].append({**invented, "speaker": {"name": ""}})
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.quote_text == Counts(10, 10, 10)
    assert scores.spurious_quotes == []

    tobacco["quotes"][-1]["speaker"]["name"] = "Xing Wangli"
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.quote_text == Counts(10, 11, 10)
    assert scores.quote_speaker == Counts(10, 11, 10)
    assert scores.spurious_quotes == ["smoking is fashionable"]


def test_exact_span_share_counts_misaligned_spans(records: list[dict]) -> None:
    span = by_file(records, TOBACCO)["quotes"][0]["span"]
    span["start"] += 1
    report = evaluate(records, GOLD_DIR)
    assert article(report, TOBACCO).exact_span_share == pytest.approx(0.9)
    assert article(report, TOBACCO).quote_text == Counts(10, 10, 10)  # text still matches
    assert report.exact_span_share == pytest.approx((TOTAL_QUOTES - 1) / TOTAL_QUOTES)


# --------------------------------------------------------------------------- organisations


def test_organisation_given_only_by_alias_matches(records: list[dict]) -> None:
    organisations = by_file(records, TOBACCO)["organisations"]
    bat = next(o for o in organisations if o["name"] == "British American Tobacco")
    bat.update(id=organisation_id("Bat"), name="Bat", aliases=[])
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.organisations == Counts(5, 5, 5)


def test_legal_suffix_is_ignored_for_organisations(records: list[dict]) -> None:
    organisations = by_file(records, SEED)["organisations"]
    qianxin = next(o for o in organisations if o["name"] == "Qi-Anxin Technology Group")
    qianxin.update(name="Qi-Anxin Technology Co., Ltd.", aliases=[])
    assert article(evaluate(records, GOLD_DIR), SEED).organisations == Counts(14, 14, 14)


def test_invented_organisation_lowers_precision(records: list[dict]) -> None:
    by_file(records, TOBACCO)["organisations"].append(
        {"id": organisation_id("Acme Widgets"), "name": "Acme Widgets", "aliases": ["Acme"]}
    )
    report = evaluate(records, GOLD_DIR)
    scores = article(report, TOBACCO)
    assert scores.organisations == Counts(5, 6, 5)
    assert scores.organisations.precision == pytest.approx(5 / 6)
    assert scores.organisations.recall == 1.0
    assert scores.spurious_organisations == ["Acme Widgets"]
    assert report.organisations.precision == pytest.approx(TOTAL_ORGANISATIONS / (TOTAL_ORGANISATIONS + 1))


def test_one_to_one_organisation_matching(records: list[dict]) -> None:
    organisations = by_file(records, TOBACCO)["organisations"]
    organisations.append(copy.deepcopy(organisations[0]))  # the same organisation twice
    assert article(evaluate(records, GOLD_DIR), TOBACCO).organisations == Counts(5, 6, 5)


def test_gold_entries_with_the_same_name_but_for_case_count_once() -> None:
    from pipeline.evaluate import score_article

    text = "ORIOLES beat the Yankees. The Orioles said so."
    gold = {"source_file": "a.txt", "quotes": [], "policy_areas": [], "organisations": [
        {"name": "ORIOLES", "aliases": [], "type": "other", "country": None},
        {"name": "Orioles", "aliases": [], "type": "other", "country": None},
        {"name": "Yankees", "aliases": [], "type": "other", "country": None},
    ]}  # fmt: skip
    record = {"source_file": "a.txt", "article": {"text": text}, "quotes": [], "policy_areas": [], "organisations": [{"name": "Orioles", "aliases": ["ORIOLES"], "type": "other", "country": None}]}
    assert score_article(record, gold).organisations == Counts(1, 1, 2)


# --------------------------------------------------------------------------- policy areas


def test_wrong_main_topic(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    assert [a["code"] for a in tobacco["policy_areas"]] == [15, 18]
    tobacco["policy_areas"].reverse()
    report = evaluate(records, GOLD_DIR)
    scores = article(report, TOBACCO)
    assert scores.main_topic_correct is False
    assert scores.policy_areas.f1 == 1.0  # same set of codes
    assert report.main_topic_accuracy == pytest.approx(4 / 5)


def test_missing_and_extra_policy_codes(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    tobacco["policy_areas"] = [{"code": 15, "name": "Domestic Commerce"}, {"code": 3, "name": "Health"}]
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.policy_areas == Counts(1, 2, 2)
    assert scores.policy_areas.f1 == pytest.approx(0.5)
    assert scores.main_topic_correct


# --------------------------------------------------------------------------- record matching


def test_missing_record_counts_as_all_missed(records: list[dict]) -> None:
    records = [r for r in records if r["article"]["source_file"] != LAMB]
    report = evaluate(records, GOLD_DIR)
    lamb = article(report, LAMB)
    assert not lamb.has_record
    assert lamb.quote_text == Counts(0, 0, 8)
    assert lamb.organisations == Counts(0, 0, 4)
    assert lamb.quote_text.f1 == 0.0
    assert not lamb.main_topic_correct
    assert report.missing_records == [LAMB]
    assert report.quote_text.recall == pytest.approx((TOTAL_QUOTES - 8) / TOTAL_QUOTES)
    assert report.quote_text.precision == 1.0
    assert report.main_topic_accuracy == pytest.approx(4 / 5)


def test_records_without_gold_are_ignored_and_listed(records: list[dict]) -> None:
    stray = copy.deepcopy(by_file(records, TOBACCO))
    stray["article"]["source_file"] = "99_not_in_gold.txt"
    report = evaluate([*records, stray], GOLD_DIR)
    assert report.ignored_records == ["99_not_in_gold.txt"]
    assert report.quote_text == Counts(TOTAL_QUOTES, TOTAL_QUOTES, TOTAL_QUOTES)
    assert "99_not_in_gold.txt" in render_report(report)


def test_record_matched_by_file_stem(records: list[dict]) -> None:
    by_file(records, LAMB)["article"]["source_file"] = "inputs/03_eu_british_lamb_boycott.md"
    report = evaluate(records, GOLD_DIR)
    assert article(report, LAMB).has_record
    assert article(report, LAMB).quote_text == Counts(8, 8, 8)
    assert report.ignored_records == []


# --------------------------------------------------------------------------- metrics conventions


def test_counts_conventions() -> None:
    assert (Counts(0, 0, 0).precision, Counts(0, 0, 0).recall, Counts(0, 0, 0).f1) == (1.0, 1.0, 1.0)
    assert (Counts(0, 3, 0).precision, Counts(0, 3, 0).recall, Counts(0, 3, 0).f1) == (0.0, 0.0, 0.0)
    assert (Counts(0, 0, 4).precision, Counts(0, 0, 4).recall, Counts(0, 0, 4).f1) == (0.0, 0.0, 0.0)
    assert Counts(3, 4, 6).f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert Counts(1, 2, 3) + Counts(4, 5, 6) == Counts(5, 7, 9)


def test_article_without_gold_or_predicted_quotes_scores_one_but_totals_use_counts() -> None:
    empty_gold = {"source_file": "a.txt", "quotes": [], "organisations": [], "policy_areas": []}
    record = {"article": {"source_file": "a.txt", "text": "Nothing said."}}
    scores = score_article(record, empty_gold)
    assert scores.quote_text.f1 == 1.0 and scores.organisations.f1 == 1.0 and scores.main_topic_correct
    other = score_article(record, {**empty_gold, "quotes": [{"speaker": "A B", "text": "x y z", "type": "direct"}]})
    report = EvaluationReport([scores, other])
    assert report.quote_text == Counts(0, 0, 1)
    assert report.quote_text.f1 == 0.0


def test_cost_per_article(records: list[dict]) -> None:
    for seconds, record in enumerate(records, start=1):
        record["provenance"]["seconds"] = float(seconds)
        record["provenance"]["usage"].update(prompt_tokens=1000 * seconds, completion_tokens=100 * seconds)
    report = evaluate(records[:-1], GOLD_DIR)  # the last article has no record: no cost
    assert article(report, SEED).seconds == 1.0
    assert article(report, SEED).prompt_tokens == 1000
    cost = report.cost()
    assert cost["seconds"] == {"median": 2.5, "max": 4.0}
    assert cost["prompt_tokens"] == {"median": 2500, "max": 4000}
    assert cost["completion_tokens"] == {"median": 250, "max": 400}


# --------------------------------------------------------------------------- output


def test_render_report_lists_every_article_and_a_total(records: list[dict]) -> None:
    del by_file(records, TOBACCO)["quotes"][0]
    report = evaluate([r for r in records if r["article"]["source_file"] != LAMB], GOLD_DIR)
    text = render_report(report)
    lines = text.splitlines()
    for source_file in load_gold(GOLD_DIR):
        assert sum(line.startswith(source_file) for line in lines) == 1
    assert f"{LAMB} (no record)" in text
    total = next(line for line in lines if line.startswith("TOTAL"))
    f1 = f"{report.quote_text.f1:.2f}"
    assert total.split()[1:4] == [f"{report.quote_text.precision:.2f}", f"{report.quote_text.recall:.2f}", f1]
    assert total.split()[1:4] == ["1.00", "0.85", "0.92"]  # 53 of 62 gold quotes found


def test_to_json_round_trips(records: list[dict]) -> None:
    by_file(records, TOBACCO)["quotes"][0]["speaker"]["name"] = "Lu Ting"
    report = evaluate(records[1:], GOLD_DIR)
    summary = report.to_json()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["total"]["quote_text"] == {
        "matched": 44,
        "predicted": 44,
        "gold": TOTAL_QUOTES,
        "precision": 1.0,
        "recall": 44 / TOTAL_QUOTES,
        "f1": 2 * (44 / TOTAL_QUOTES) / (1 + 44 / TOTAL_QUOTES),
    }
    assert summary["total"]["quote_speaker"]["matched"] == 43
    assert summary["missing_records"] == [SEED]
    tobacco = next(a for a in summary["articles"] if a["source_file"] == TOBACCO)
    assert tobacco["errors"]["wrong_speakers"] == [
        {"text": "China already has more than enough cigarette-making capacity", "predicted": "Lu Ting", "gold": "Xing Wangli"}
    ]


# --------------------------------------------------------------------------- article files


def test_split_article_header_and_body() -> None:
    header, body = split_article("title: T\nurl: https://x.org/a\n\n  Body line one.\n\nLine two.  \n")
    assert header == {"title": "T", "url": "https://x.org/a"}
    assert body == "Body line one.\n\nLine two."
    assert split_article("No header here.\n\nSecond paragraph.\n") == ({}, "No header here.\n\nSecond paragraph.")


def test_gold_spans_are_found_modulo_quote_marks_and_whitespace(tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "gold").mkdir()
    body = "“We will  not\nyield,” said Ann Lee. Ann Lee’s rival said ``nothing changes''."
    (tmp_path / "articles" / "a.txt").write_text(f"title: A\nsource: Test\n\n{body}\n", encoding="utf-8")
    gold = {
        "source_file": "a.txt",
        "quotes": [
            {"speaker": "Ann Lee", "text": "We will not yield,", "type": "direct"},
            {"speaker": "Bo Chan", "text": "\"nothing changes\"", "type": "indirect"},
        ],
        "organisations": [],
        "policy_areas": [{"code": 20, "name": "Government Operations"}],
    }
    (tmp_path / "gold" / "a.json").write_text(json.dumps(gold), encoding="utf-8")
    [record] = gold_as_records(tmp_path / "gold", tmp_path / "articles")
    assert record["article"]["text"] == body
    assert [q["text"] for q in record["quotes"]] == ["We will  not\nyield,", "``nothing changes''"]
    report = evaluate([record], tmp_path / "gold")
    assert report.quote_speaker.f1 == 1.0 and report.exact_span_share == 1.0


def test_organisation_type_and_country_accuracy_over_matched_organisations() -> None:
    gold = load_gold(GOLD_DIR)
    records = gold_as_records(GOLD_DIR, ARTICLES_DIR)
    perfect = evaluate(records, GOLD_DIR)
    assert perfect.organisation_type_accuracy == 1.0 and perfect.organisation_country_accuracy == 1.0
    changed = copy.deepcopy(records)
    org = changed[0]["organisations"][0]
    org["type"] = "other" if org["type"] != "other" else "company"
    org["country"] = "ZZ"
    report = evaluate(changed, GOLD_DIR)
    matched = report.organisations.matched
    assert report.organisation_type_accuracy == pytest.approx((matched - 1) / matched)
    assert report.organisation_country_accuracy == pytest.approx((matched - 1) / matched)
    assert "gold type" in render_report(report)
    assert len(gold) == len(records)


# --------------------------------------------------------------------------- speakers' roles and organisations

TOTAL_PERSONS = 19  # person entries in the five gold `speakers` lists


def _person_quotes(record: dict, name: str) -> list[dict]:
    return [q for q in record["quotes"] if q["speaker"]["name"] == name]


def test_gold_records_have_every_person_role_and_organisation_right(records: list[dict]) -> None:
    report = evaluate(records, GOLD_DIR)
    links = report.person_links
    assert (links.gold, links.scored, links.role_correct, links.organisation_correct) == (TOTAL_PERSONS,) * 4
    assert links.role_accuracy == 1.0 and links.organisation_accuracy == 1.0
    assert all(not a.wrong_person_links for a in report.articles)


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("co-director", "co-director", True),
        ("co", "co-director", False),  # a fragment of a hyphenated title
        ("vice", "vice-president and chief technology officer", False),
        ("director of the Example Institute", "director", True),  # holds the whole gold role
        ("US Secretary of State", "Secretary of State", True),
        ("State", "Secretary of State", False),
        ("chief economist", "chief China economist", False),  # not a contiguous run of the gold role
        ("associate dean of studies", "associate dean of studies and research", True),  # most of it
        ("dean", "associate dean of studies and research", False),
        (None, None, True),
        ("", None, True),
        ("55", None, False),  # an age where the gold has no role
        (None, "chairman", False),
    ],
)
def test_role_rule(predicted: str | None, gold: str | None, expected: bool) -> None:
    assert role_matches(predicted, gold) is expected


def test_only_the_first_matched_quote_of_a_person_is_judged(records: list[dict]) -> None:
    seed = by_file(records, SEED)
    pan = _person_quotes(seed, "Pan Helin")
    assert len(pan) > 1
    pan[0]["speaker"]["role"] = "co"
    for later in pan[1:]:
        later["speaker"]["role"] = "something else entirely"
    scores = article(evaluate(records, GOLD_DIR), SEED)
    assert scores.person_links.role_correct == scores.person_links.scored - 1
    assert [(w.speaker, w.predicted_role, w.role_correct, w.organisation_correct) for w in scores.wrong_person_links] == [
        ("Pan Helin", "co", False, True)
    ]


def test_person_organisation_is_read_through_the_record_organisations(records: list[dict]) -> None:
    lamb = by_file(records, LAMB)
    [quote] = _person_quotes(lamb, "Nikolaus van der Pas")[:1]
    commission = next(o for o in lamb["organisations"] if o["id"] == quote["speaker"]["organisation_id"])
    assert commission["name"] == "European Commission"
    # Another organisation of the record: wrong. An id the record does not list: counts as null, wrong here.
    other = next(o for o in lamb["organisations"] if o["id"] != commission["id"])
    for organisation_id_, expected_wrong in ((other["id"], 1), ("org_000000000000", 1), (None, 1), (commission["id"], 0)):
        quote["speaker"]["organisation_id"] = organisation_id_
        scores = article(evaluate(records, GOLD_DIR), LAMB)
        assert scores.person_links.scored - scores.person_links.organisation_correct == expected_wrong
    # A null gold organisation is matched only by a null prediction.
    [palacio] = _person_quotes(lamb, "Loyola de Palacio")[:1]
    assert palacio["speaker"]["organisation_id"] is None
    palacio["speaker"]["organisation_id"] = commission["id"]
    scores = article(evaluate(records, GOLD_DIR), LAMB)
    assert [w.speaker for w in scores.wrong_person_links] == ["Loyola de Palacio"]


def test_person_organisation_matches_by_alias(records: list[dict]) -> None:
    lamb = by_file(records, LAMB)
    [jones] = _person_quotes(lamb, "John Lloyd Jones")[:1]
    union = next(o for o in lamb["organisations"] if o["id"] == jones["speaker"]["organisation_id"])
    gold_union = next(o for o in load_gold(GOLD_DIR)[LAMB]["organisations"] if o["name"] == union["name"])
    assert gold_union["aliases"]
    union["name"], union["aliases"] = gold_union["aliases"][0], []  # the record knows it only by a gold alias
    assert article(evaluate(records, GOLD_DIR), LAMB).person_links.organisation_accuracy == 1.0
    union["name"] = "Welsh Farmers' Cooperative"
    assert article(evaluate(records, GOLD_DIR), LAMB).person_links.organisation_correct == 3


def test_person_typed_as_organisation_has_neither_role_nor_organisation(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    for quote in _person_quotes(tobacco, "Xing Wangli"):
        quote["speaker"]["kind"] = "organisation"
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.person_links == PersonLinks(gold=1, scored=1, role_correct=0, organisation_correct=0)


def test_person_links_in_report_and_json(records: list[dict]) -> None:
    seed = by_file(records, SEED)
    _person_quotes(seed, "Pan Helin")[0]["speaker"]["role"] = "co"
    report = evaluate(records, GOLD_DIR)
    text = render_report(report)
    header = re.split(r"\s{2,}", text.splitlines()[0])
    total = re.split(r"\s{2,}", next(line for line in text.splitlines() if line.startswith("TOTAL")))
    assert total[header.index("role")] == f"{(TOTAL_PERSONS - 1) / TOTAL_PERSONS:.2f}"
    assert total[header.index("p.org")] == "1.00"
    assert f"person role accuracy {(TOTAL_PERSONS - 1) / TOTAL_PERSONS:.2f}" in text
    summary = report.to_json()
    assert summary["total"]["person_role_accuracy"] == pytest.approx((TOTAL_PERSONS - 1) / TOTAL_PERSONS)
    assert summary["total"]["person_organisation_accuracy"] == 1.0
    assert summary["total"]["person_links"]["scored"] == TOTAL_PERSONS
    seed_json = next(a for a in summary["articles"] if a["source_file"] == SEED)
    assert seed_json["person_links"]["role_correct"] == seed_json["person_links"]["scored"] - 1
    assert seed_json["errors"]["wrong_person_links"][0]["predicted_role"] == "co"


def test_person_without_a_correctly_attributed_quote_is_not_scored(records: list[dict]) -> None:
    tobacco = by_file(records, TOBACCO)
    for quote in _person_quotes(tobacco, "Xing Wangli"):
        quote["speaker"]["name"] = "Lu Ting"
    scores = article(evaluate(records, GOLD_DIR), TOBACCO)
    assert scores.person_links == PersonLinks(gold=1, scored=0)


def test_gold_speaker_given_as_a_whole_source_mention_matches_its_name_part() -> None:
    from pipeline.evaluate import gold_speaker_head, speaker_matches

    assert gold_speaker_head("Jay Smith, the club's 78-year-old president") == "Jay Smith"
    assert gold_speaker_head("Ann Lee (D-Ohio)") == "Ann Lee"
    assert gold_speaker_head("Mr. Jones, who leads the group") == "Mr. Jones"
    assert gold_speaker_head("Bank of England") == "Bank of England"
    assert gold_speaker_head("Gov. Mary K. Olsen of Vermont") == "Gov. Mary K. Olsen"
    assert gold_speaker_head("Tom Reed of the Harbor Retail Council") == "Tom Reed"
    assert gold_speaker_head("The Republic of Turkey") == "The Republic of Turkey"
    assert gold_speaker_head("aides to Gov. Ann Lee of New Mexico") == "aides to Gov. Ann Lee of New Mexico"
    assert gold_speaker_head("Secretary of State John Kerry") == "Secretary of State John Kerry"
    assert speaker_matches("Mary Olsen", "Gov. Mary K. Olsen of Vermont")
    assert not speaker_matches("Vermont", "Gov. Mary K. Olsen of Vermont, who leads the state")
    assert speaker_matches("Jay Smith", "Jay Smith, the club's 78-year-old president")
    assert not speaker_matches("Bank of America", "Bank of England, which sets rates")
    assert not speaker_matches("Mary Brown", "Jay Smith, the club's 78-year-old president")


def test_evaluate_stops_before_running_when_the_gold_folder_holds_no_gold(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "set" / "articles").mkdir(parents=True)
    (tmp_path / "set" / "gold").mkdir()
    (tmp_path / "set" / "articles" / "a.txt").write_text("Ann Lee said the ferry would run.", encoding="utf-8")
    out = tmp_path / "out"
    args = ["evaluate", "--rules-only", "--articles", str(tmp_path / "set" / "articles"), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--gold", str(tmp_path / "set")])
    assert result.exit_code == 2
    assert f"no gold annotations (*.json) in {tmp_path / 'set' / 'gold'}" in result.output
    assert not out.exists()  # nothing was run
    (tmp_path / "set" / "gold" / "a.json").write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(app, [*args, "--gold", str(tmp_path / "set" / "gold")])
    assert result.exit_code == 2
    assert "a.json: not a JSON gold annotation" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_evaluate_given_a_sets_own_folder_scores_against_its_gold_subfolder(tmp_path: Path) -> None:
    """`--gold <set>` for a set laid out as <set>/articles and <set>/gold (eval-dev, converted corpora)."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "set" / "articles").mkdir(parents=True)
    (tmp_path / "set" / "gold").mkdir()
    (tmp_path / "set" / "articles" / "a.txt").write_text('"The ferry will run all winter," Ann Lee said on Monday.', encoding="utf-8")
    gold = {"source_file": "a.txt", "quotes": [{"speaker": "Ann Lee", "text": "The ferry will run all winter", "type": "direct"}], "organisations": [], "policy_areas": [], "quotes_only": True}
    (tmp_path / "set" / "gold" / "a.json").write_text(json.dumps(gold), encoding="utf-8")
    args = ["evaluate", "--rules-only", "--articles", str(tmp_path / "set" / "articles"), "-o", str(tmp_path / "out"), "--gold", str(tmp_path / "set")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"gold annotations: {tmp_path / 'set' / 'gold'}" in result.output
    assert "matched/predicted/gold: quotes 1/1/1" in result.output
