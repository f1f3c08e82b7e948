"""The corpus converters (run through `pipeline.corpora`) and the evaluator's two corpus conventions.

The converters are the scripts in ../shared/corpora/tools, run unchanged on tiny synthetic brat and
CoNLL samples written here (no corpus text). The conventions: a gold file with `"quotes_only": true`
adds nothing to the organisation, CAP and main-topic figures; a gold quote with `"speaker": null`
counts for the quote-text figures only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.corpora import Conversion, prepare, sample
from pipeline.evaluate import EvaluationReport, load_gold, score_article
from tests.conftest import require_corpora

HEADLINE = "Council Backs Budget After Long Debate\n"
BODY = (
    'The council approved the budget on Monday. "We will keep the schools open," said Jane Doe, the mayor, '
    '"and the buses running." Officials said the vote was close.\n'
)
TEXT = HEADLINE + BODY


def _span(needle: str, text: str = TEXT) -> tuple[int, int]:
    start = text.index(needle)
    return start, start + len(needle)


def _ann(lines: list[tuple[str, str, list[tuple[int, int]]]], events: list[str], text: str = TEXT) -> str:
    """brat standoff: T lines (id, type, pieces) with the pieces' text, then the E lines."""
    out = []
    for tid, kind, pieces in lines:
        ranges = ";".join(f"{a} {b}" for a, b in pieces)
        out.append(f"{tid}\t{kind} {ranges}\t{' '.join(text[a:b] for a, b in pieces)}")
    return "\n".join(out + events) + "\n"


def good_annotation() -> str:
    first, second = _span("We will keep the schools open,"), _span('"and the buses running."')
    said = _span("said Jane")[0], _span("said Jane")[0] + 4
    officials_said = _span("Officials said")
    return _ann(
        [
            ("T1", "Source", [_span("Jane Doe")]),
            ("T2", "Cue", [said]),
            ("T3", "Content", [first, second]),  # discontinuous: the attribution splits the quote
            ("T4", "Attribution", [said]),
            ("T5", "Source", [_span("Officials")]),
            ("T6", "Cue", [(officials_said[1] - 4, officials_said[1])]),
            ("T7", "Content", [_span("the vote was close")]),
            ("T8", "Attribution", [(officials_said[1] - 4, officials_said[1])]),
        ],
        ["E1\tAttribution:T4 Content:T3 Cue:T2 Source:T1", "E2\tAttribution:T8 Content:T7 Cue:T6 Source:T5"],
    )


def bad_annotation() -> str:
    a, b = _span("Jane Doe")
    return f"T1\tSource {a} {b}\tJohn Roe\n"  # the text does not match the offsets: the converter rejects the file


@pytest.fixture
def corpora(tmp_path: Path) -> Path:
    """A corpora folder of synthetic samples, with the real converters (tools/ links to ../shared/corpora/tools)."""
    real = require_corpora()
    root = tmp_path / "corpora"
    (root / "tools").parent.mkdir(parents=True)
    (root / "tools").symlink_to(real / "tools", target_is_directory=True)
    split = root / "polnear" / "dev"
    (split / "text").mkdir(parents=True)
    (split / "attributions").mkdir()
    for name in ("a1", "a2", "a3"):
        (split / "text" / f"{name}.txt").write_text(TEXT, encoding="utf-8")
    (split / "attributions" / "a1_ef01.ann").write_text(good_annotation(), encoding="utf-8")
    (split / "attributions" / "a2_aa01.ann").write_text(bad_annotation(), encoding="utf-8")  # first by name: rejected
    (split / "attributions" / "a2_bb02.ann").write_text(good_annotation(), encoding="utf-8")  # another annotator's file
    (split / "attributions" / "a3_cc03.ann").write_text(bad_annotation(), encoding="utf-8")  # its only file: rejected
    (root / "conllpp").mkdir()
    (root / "conllpp" / "dev.txt").write_text(conll_sample(), encoding="utf-8")
    return root


def conll_sample() -> str:
    """Two documents: a prose one with ORG entities (IOB1 and a B- tag between two adjacent ORGs) and a short one."""
    entity = [("European", "I-ORG"), ("Commission", "I-ORG"), ("and", "O"), ("Acme", "I-ORG"), ("Corp", "I-ORG"), ("Beta", "B-ORG"), ("Bank", "I-ORG")]
    filler = [(w, "O") for w in "officials met on Monday to discuss the plan for the region and agreed to meet again soon".split()]
    sentences = [entity + filler + [(".", "O")]] + [filler + [(".", "O")]] * 8 + [[("European", "I-ORG"), ("Commission", "I-ORG"), ("said", "O"), ("so", "O"), (".", "O")]]
    short = [[("Gamma", "I-ORG"), ("Ltd", "I-ORG"), ("won", "O"), (".", "O")]]

    def doc(sents: list[list[tuple[str, str]]]) -> str:
        return "-DOCSTART- -X- -X- O\n\n" + "\n\n".join("\n".join(f"{tok} NN I-NP {tag}" for tok, tag in s) for s in sents) + "\n\n"

    return doc(sentences) + doc(short)


def test_polnear_conversion_drops_rejected_annotation_files_and_keeps_the_rest(corpora: Path, tmp_path: Path) -> None:
    out = tmp_path / "polnear-dev"
    conversion = prepare("polnear-dev", out, corpora=corpora)

    assert conversion.dropped == ["a2_aa01.ann T1", "a3_cc03.ann T1"]
    assert conversion.documents == 2 and sorted(p.name for p in (out / "articles").iterdir()) == ["a1.txt", "a2.txt"]
    assert (out / "articles" / "a1.txt").read_text(encoding="utf-8") == TEXT, "the article is the corpus text unchanged"
    stamp = json.loads((out / "conversion.json").read_text())
    assert stamp["dropped"] == conversion.dropped and stamp["documents"] == 2
    gold = load_gold(out / "gold")
    assert gold["a2.txt"]["notes"].startswith("PolNeAR attribution annotation (a2_bb02.ann"), "the other annotator's file is used"
    quotes = [(q["speaker"], q["text"], q["type"]) for q in gold["a1.txt"]["quotes"]]
    assert quotes == [
        ("Jane Doe", "We will keep the schools open", "direct"),
        ("Jane Doe", "and the buses running.", "direct"),
        (None, "the vote was close", "indirect"),  # "Officials" is not a proper name
    ]
    assert gold["a1.txt"]["quotes_only"] is True and gold["a1.txt"]["organisations"] == []
    for quote in gold["a1.txt"]["quotes"]:
        assert quote["text"] in TEXT

    # Up to date: not converted again (the gold files are left alone); --force converts again.
    (out / "gold" / "a1.json").write_text(json.dumps({**gold["a1.txt"], "notes": "kept"}))
    assert prepare("polnear-dev", out, corpora=corpora) == conversion
    assert load_gold(out / "gold")["a1.txt"]["notes"] == "kept"
    prepare("polnear-dev", out, corpora=corpora, force=True)
    assert load_gold(out / "gold")["a1.txt"]["notes"] != "kept"


def test_conll_conversion_keeps_prose_documents_with_their_organisations(corpora: Path, tmp_path: Path) -> None:
    out = tmp_path / "conll-dev"
    (out / "gold").mkdir(parents=True)
    (out / "gold" / "stale.json").write_text('{"source_file": "stale.txt"}')
    conversion = prepare("conll-dev", out, corpora=corpora)

    assert isinstance(conversion, Conversion) and conversion.documents == 1 and conversion.dropped == []
    gold = load_gold(out / "gold")
    assert list(gold) == ["conll_0000.txt"], "the short document is skipped and stale files are removed"
    assert [o["name"] for o in gold["conll_0000.txt"]["organisations"]] == ["European Commission", "Acme Corp", "Beta Bank"]
    text = (out / "articles" / "conll_0000.txt").read_text()
    assert text.startswith("European Commission and Acme Corp Beta Bank officials met on Monday")


def _record(text: str, quotes: list[tuple[str, str]], *, organisations: list[str] = (), codes: list[int] = ()) -> dict:
    def quote(speaker: str, said: str) -> dict:
        start = text.index(said)
        return {"text": said, "speaker": {"name": speaker, "kind": "person"}, "span": {"start": start, "end": start + len(said)}}

    return {
        "article": {"source_file": "a1.txt", "text": text},
        "quotes": [quote(s, q) for s, q in quotes],
        "organisations": [{"name": name, "aliases": [], "type": "other", "country": None} for name in organisations],
        "policy_areas": [{"code": code, "name": "x"} for code in codes],
    }


def test_evaluator_honours_quotes_only_and_null_speakers(corpora: Path, tmp_path: Path) -> None:
    prepare("polnear-dev", tmp_path / "p", corpora=corpora)
    gold = load_gold(tmp_path / "p" / "gold")["a1.txt"]
    record = _record(
        TEXT,
        [("Jane Doe", "We will keep the schools open"), ("Jane Doe", "and the buses running."), ("Pat Smith", "the vote was close")],
        organisations=["Budget Council"],
        codes=[1],
    )
    scores = score_article(record, gold)

    assert (scores.quote_text.matched, scores.quote_text.predicted, scores.quote_text.gold) == (3, 3, 3)
    # The null-speaker gold quote and the prediction paired with it leave the speaker figures:
    assert (scores.quote_speaker.matched, scores.quote_speaker.predicted, scores.quote_speaker.gold) == (2, 2, 2)
    assert scores.wrong_speakers == []
    # quotes_only: the record's organisations and CAP codes are neither right nor wrong.
    assert scores.quotes_only
    assert (scores.organisations.predicted, scores.organisations.gold, scores.policy_areas.predicted) == (0, 0, 0)
    assert scores.missed_organisations == scores.spurious_organisations == []

    # Without the conventions the same record would be penalised: the flags are what make the difference.
    plain = {**gold, "quotes_only": False, "quotes": [{**q, "speaker": q["speaker"] or "Officials"} for q in gold["quotes"]]}
    unflagged = score_article(record, plain)
    assert unflagged.quote_speaker.gold == 3 and unflagged.quote_speaker.matched == 2
    assert unflagged.organisations.predicted == 1 and unflagged.policy_areas.predicted == 1

    # Main-topic accuracy skips quotes-only articles: one topical article right, one quotes-only article.
    topical = score_article(_record(TEXT, [], codes=[1]), {"source_file": "t.txt", "quotes": [], "organisations": [], "policy_areas": [{"code": 1, "name": "x"}]})
    assert EvaluationReport([topical, scores]).main_topic_accuracy == 1.0
    assert EvaluationReport([topical, unflagged]).main_topic_accuracy == 0.5


def test_sample_is_every_nth_name_in_sorted_order() -> None:
    assert sample(["c", "a", "e", "b", "d", "f", "g"], 3) == ["a", "d", "g"]
    assert sample(["b", "a"], 1) == ["a", "b"]


def test_corpus_benchmark_starts_a_new_table_when_its_columns_change(tmp_path: Path) -> None:
    import sys

    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    sys.path.insert(0, scripts)
    try:
        import bench_corpora
    finally:
        sys.path.remove(scripts)
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Corpus quality: polnear-dev\n\nintro\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Corpus quality: conll-dev\n\nkeep\n")
    bench_corpora.append_row(path, "polnear-dev", "| row 1 |\n", "cmd")
    bench_corpora.append_row(path, "polnear-dev", "| row 2 |\n", "cmd")
    text = path.read_text()
    header = bench_corpora.table_header("polnear-dev")
    assert "| a | b |\n|---|---|\n| 1 | 2 |\n" in text, "old rows keep their own header"
    assert text.count(header) == 1 and f"{header}| row 1 |\n| row 2 |\n" in text
    assert text.index(header) < text.index("## Corpus quality: conll-dev") and text.endswith("## Corpus quality: conll-dev\n\nkeep\n")
