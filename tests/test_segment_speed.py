"""The sped-up attribute ruler and lemmatizer (pipeline/segment.py) annotate exactly as spaCy's own do."""

from __future__ import annotations

import pytest
import spacy

from pipeline import segment as seg_module

TEXTS = [
    # the ruler's special cases: contractions, two-token rules, regex rules, expletive "there", pronoun cases
    "I ain't gonna do it, y'all. Let's go! There is nothin' here, and there were none.\n\n  Gotta see it. C'mon!  \n"
    "It's I who did it; give it to me and to you. Whether or not that is so, he'd have had it. Don't.",
    'The ministry said on Tuesday that it "will not accept" the offer, according to Anna Keller, its spokeswoman.\n\n'
    "Keller, 54, told reporters: \"We have done what we could.\" Analysts said the figures weren't final.",
    "WASHINGTON (Reuters) - U.S. Senator John Smith's aides, who asked not to be named, said he was reviewing the bill.",
]


def _annotations(doc) -> list[tuple]:
    return [(t.text, t.tag_, t.pos_, str(t.morph), t.lemma_, t.dep_, t.head.i, t.ent_type_, t.ent_iob_) for t in doc]


@pytest.fixture(scope="module")
def pipelines():
    plain = spacy.load(seg_module.SPACY_MODEL)
    fast = spacy.load(seg_module.SPACY_MODEL)
    seg_module._index_attribute_ruler(fast)
    seg_module._cache_lemmas(fast)
    return plain, fast


@pytest.mark.parametrize("text", TEXTS)
def test_same_annotations_as_spacy(pipelines, text: str) -> None:
    plain, fast = pipelines
    assert _annotations(fast(text)) == _annotations(plain(text))
    assert _annotations(fast(text)) == _annotations(plain(text))  # again, with the lemma cache filled


@pytest.mark.parametrize("text", TEXTS)
def test_same_ruler_matches_as_spacy(pipelines, text: str) -> None:
    plain, fast = pipelines
    docs = []
    for nlp in (plain, fast):
        doc = nlp.make_doc(text)
        for name, component in nlp.pipeline:
            if name == "attribute_ruler":
                break
            doc = component(doc)
        docs.append(doc)
    expected = plain.get_pipe("attribute_ruler").match(docs[0])
    found = fast.get_pipe("attribute_ruler").match(docs[1])
    assert found == expected
    assert any(len({m[0] for m in expected if m[2] == i}) > 1 for i in range(len(docs[0])))  # rules that overwrite others


def test_the_index_is_in_use(pipelines) -> None:
    """Most rules are looked up, not matched: the speed-up is not silently off."""
    _, fast = pipelines
    ruler = fast.get_pipe("attribute_ruler")
    assert ruler.match.__qualname__.startswith("_index_attribute_ruler")
    assert seg_module.load_nlp().get_pipe("attribute_ruler").match.__qualname__.startswith("_index_attribute_ruler")


def _parse(seg) -> tuple:
    return (_annotations(seg.doc), seg.sentences, seg.paragraphs, seg.entities, seg.organisations, seg.recognised)


def test_batched_parse_is_the_same_parse() -> None:
    texts = [*TEXTS, "", "Apple Inc. said so."]
    one_by_one = [seg_module.segment(t) for t in texts]
    assert [_parse(s) for s in seg_module.segment_many(texts, batch_size=3)] == [_parse(s) for s in one_by_one]
    assert one_by_one[-1].organisations == [seg_module.Entity("Apple Inc.", "ORG", 0, 10)]


def test_a_parse_made_in_a_batch_gives_the_same_record() -> None:
    from pipeline.ingest import Article
    from pipeline.process import RULES_BACKEND, extract_record

    texts = [TEXTS[1], "Apple Inc. said on Monday that sales rose."]
    articles = [Article(id=f"art_{i}", source_file=f"{i}.txt", text=t, title=None, published=None, source=None, url=None) for i, t in enumerate(texts)]

    def content(record) -> dict:  # noqa: ANN001
        return record.model_dump(mode="json", exclude={"provenance"})

    alone = [content(extract_record(a, None, model="rules", backend=RULES_BACKEND)) for a in articles]
    batched = [content(extract_record(a, None, model="rules", backend=RULES_BACKEND, seg=s)) for a, s in zip(articles, seg_module.segment_many(texts, batch_size=2), strict=True)]
    assert batched == alone
    with pytest.raises(ValueError, match="another text"):
        extract_record(articles[0], None, model="rules", backend=RULES_BACKEND, seg=seg_module.segment(texts[1]))
