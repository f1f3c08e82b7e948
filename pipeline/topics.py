"""CAP coding stage: which Comparative Agendas Project major topics an article discusses, main topic first.

Two readings of the article (`article_topics`; the keywords decide where they find anything, see
CLASSIFIER_SHARE):
- a classifier learned from New York Times front-page headlines coded with CAP major topics: the equal-weight
  average of a linear model (built by `scripts/train_topics.py`, shipped as
  `pipeline/resources/cap_topics_v2.npz`: vocabulary, idf, coefficients and per-class probability
  calibration as plain arrays, loaded without pickle), applied to the title and body as one text, and a
  fine-tuned sentence encoder (`pipeline/cap_encoder.py`), applied to the title and lead;
- keyword stems of each topic (`TOPIC_STEMS`), the title and lead counting extra.
The main topic is the largest share; a second code is kept when its share is close enough (`choose_codes`).
The evidence for a code is the sentences that use its keywords or that the classifier reads most as that
topic (`topic_evidence`). The corpus's non-policy media codes (sports, weather, obituaries, ...) are learned,
so that such text pulls no policy topic, but never emitted: only `CAP_MAJOR_TOPICS` codes leave this module.
`pipeline/process.py` calls `code_topics`; nothing here knows about runs or records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from pipeline.cap_encoder import CapEncoder, load_cap_encoder
from pipeline.extract import ask_main_topic, topic_system
from pipeline.llm import StructuredLLM
from pipeline.segment import SegmentedArticle
from schemas.records import CAP_MAJOR_TOPICS

MODEL_FILE = Path(__file__).resolve().parent / "resources" / "cap_topics_v2.npz"
# 2: the text is read as written (format 1 models were fitted on texts with names blanked).
FORMAT_VERSION = 2

# Features: word uni- and bigrams and character 2-5-grams within word boundaries, each block tf-idf
# weighted (sublinear tf) and L2-normalised on its own, as scikit-learn's TfidfVectorizer does.
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)

# Names are not blanked (format 1 blanked places, nationalities and people with spaCy NER, so that a
# story abroad would not read as International Affairs): on the 2005-2006 headlines it never saw, the
# classifier reads 0.60 with names and 0.52 without them (random 80/20 split 0.69 against 0.63; NER on
# headlines in title case and capitals also blanks ordinary words). At article level the keyword stems
# decide wherever they match, so a health story abroad stays Health.

# The article's topic shares: this much the classifier's, the rest the keyword stems' (TOPIC_STEMS); an
# article without keyword hits is coded by the classifier alone. 0: with the format 1 classifier, half each
# measured eval-dev CAP F1 0.75 / main topic 0.60 and tests/data/heldout 0.67 / 0.50, against the keywords'
# 0.82 / 0.80 and 0.86 / 1.00 (the classifier, fitted to NYT headline coding, reads business and technology
# news as other topics); with format 2 (names kept), 0.5 measured the same 0.75 / 0.60 and 0.67 / 0.50, and
# 0.25 measured 0.75 / 0.80 and 0.86 / 0.50. So the keywords decide wherever they find something.
# With the encoder in the classifier (2026-12-03), 0.25 and 0.5 measured the same as 0: 0.82 / 0.80 and
# 0.86 / 1.00; and on held-out headlines with a keyword hit the stems alone pick the gold topic 0.43 of the
# time, the classifier 0.80 (BENCHMARKS.md). Raising it awaits articles with CAP gold to measure on.
CLASSIFIER_SHARE = 0.0
# The encoder's weight in the classifier (the linear model has the rest). One half, fixed, not tuned: on the
# random 20 % of the headlines neither part saw, the average reads 0.758, the encoder alone 0.752, the linear
# model alone 0.693 (BENCHMARKS.md, `scripts/bench_cap.py`).
ENCODER_WEIGHT = 0.5
# The embedded model's tie-break between two close leaders (`llm_tie_break`). Off: on the dev and held-out
# articles no two leaders come within TIE_SHARE, so it changed nothing there (nothing measured in its
# favour); the path stays for endpoints and article sets where it may pay.
ASK_TIE_BREAK = False
SECOND_TOPIC_SHARE = 0.5  # a second code needs at least this fraction of the main topic's share
EVIDENCE_LIMIT = 5


def word_vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 1) -> CountVectorizer:
    return CountVectorizer(ngram_range=WORD_NGRAMS, vocabulary=vocabulary, min_df=min_df, dtype=np.float32)


def char_vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 1) -> CountVectorizer:
    return CountVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, vocabulary=vocabulary, min_df=min_df, dtype=np.float32)


def tfidf_block(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear tf times idf, L2-normalised rows (TfidfVectorizer(sublinear_tf=True) on given counts)."""
    weighted = counts.astype(np.float32).tocsr(copy=True)
    np.log(weighted.data, out=weighted.data)
    weighted.data += 1.0
    return normalize(weighted @ sparse.diags(idf.astype(np.float32)), copy=False).tocsr()


@dataclass(frozen=True)
class TopicModel:
    """The shipped classifier: features, linear scores, sigmoid calibration per class."""

    word_vocabulary: dict[str, int]
    word_idf: np.ndarray
    char_vocabulary: dict[str, int]
    char_idf: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray
    calibration_a: np.ndarray
    calibration_b: np.ndarray
    classes: np.ndarray  # CAP and media codes, as in the corpus

    @cached_property
    def _vectorizers(self) -> tuple[CountVectorizer, CountVectorizer]:
        """Built once per model: a vectorizer checks its (large) vocabulary on first use."""
        built = word_vectorizer(self.word_vocabulary), char_vectorizer(self.char_vocabulary)
        for vectorizer in built:
            vectorizer.transform([""])  # the vocabulary check, here rather than in a concurrent first call
        return built

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        word_counts, char_counts = self._vectorizers
        words = tfidf_block(word_counts.transform(texts), self.word_idf)
        chars = tfidf_block(char_counts.transform(texts), self.char_idf)
        return sparse.hstack([words, chars]).tocsr()

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities (rows sum to 1), columns in `classes` order."""
        scores = self.features(texts) @ self.coef.T + self.intercept
        calibrated = 1.0 / (1.0 + np.exp(self.calibration_a * scores + self.calibration_b))
        return calibrated / np.maximum(calibrated.sum(axis=1, keepdims=True), 1e-12)

    def predict(self, texts: Sequence[str], *, policy_only: bool = False) -> np.ndarray:
        """The most probable code per text; with `policy_only`, the most probable CAP major topic."""
        probs = self.probabilities(texts)
        if policy_only:
            probs = np.where(self.policy_columns, probs, -1.0)
        return self.classes[probs.argmax(axis=1)]

    @property
    def policy_columns(self) -> np.ndarray:
        return np.isin(self.classes, list(CAP_MAJOR_TOPICS))

    def save(self, path: Path) -> None:
        """Plain arrays only (vocabularies as sorted string arrays), so loading needs no pickle."""
        np.savez_compressed(
            path,
            format_version=np.array(FORMAT_VERSION),
            word_terms=_terms(self.word_vocabulary),
            word_idf=self.word_idf.astype(np.float32),
            char_terms=_terms(self.char_vocabulary),
            char_idf=self.char_idf.astype(np.float32),
            coef=self.coef.astype(np.float16),
            intercept=self.intercept.astype(np.float32),
            calibration_a=self.calibration_a.astype(np.float32),
            calibration_b=self.calibration_b.astype(np.float32),
            classes=self.classes.astype(np.int16),
        )

    @classmethod
    def load(cls, path: Path) -> TopicModel:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"{path}: topic model format {int(data['format_version'])}, expected {FORMAT_VERSION}")
            return cls(
                word_vocabulary={str(t): i for i, t in enumerate(data["word_terms"])},
                word_idf=data["word_idf"],
                char_vocabulary={str(t): i for i, t in enumerate(data["char_terms"])},
                char_idf=data["char_idf"],
                coef=data["coef"].astype(np.float32),
                intercept=data["intercept"],
                calibration_a=data["calibration_a"],
                calibration_b=data["calibration_b"],
                classes=data["classes"].astype(int),
            )


def _terms(vocabulary: dict[str, int]) -> np.ndarray:
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return np.array(terms, dtype=str)


@lru_cache(maxsize=1)
def load_topic_model() -> TopicModel:
    """The shipped classifier, read once per process."""
    return TopicModel.load(MODEL_FILE)


# --------------------------------------------------------------------------- keyword stems

# Stems of words that signal each CAP major topic (general news vocabulary, matched at word starts).
TOPIC_STEMS: dict[int, tuple[str, ...]] = {
    1: ("econom", "gdp", "growth", "inflation", "deflation", "fiscal", "monetary", "stimul", "deficit", "budget", "tax", "interest rate", "recession", "consumption", "demand", "productiv", "industrial polic", "overcapacity", "central bank", "bond", "spending"),
    2: ("civil right", "discriminat", "minorit", "privacy", "free speech", "gender equal", "racis"),
    3: ("health", "hospital", "disease", "patient", "medic", "drug", "vaccin", "smok", "epidemic", "virus"),
    4: ("agricultur", "farm", "livestock", "cattle", "sheep", "lamb", "crop", "grain", "harvest", "veterinar", "meat", "dairy", "fisher"),
    5: ("labor", "labour", "worker", "wage", "employ", "layoff", "job", "union", "working condition"),
    6: ("educat", "school", "student", "teacher", "universit", "curricul"),
    7: ("environment", "pollut", "climate", "emission", "carbon", "conservation", "wildlife"),
    8: ("energy", "oil", "gas", "electricit", "power plant", "nuclear", "renewabl", "solar", "wind power", "coal"),
    9: ("immigra", "migrant", "refugee", "asylum", "visa"),
    10: ("transport", "rail", "road", "airline", "aviation", "shipping", "vehicle", "traffic"),
    12: ("crime", "criminal", "police", "court", "prosecut", "prison", "fraud", "lawsuit"),
    13: ("welfare", "pension", "elderly", "poverty", "social security", "low-income", "subsid"),
    14: ("housing", "property", "real estate", "home", "mortgage", "construction", "rent"),
    15: ("competition", "antitrust", "monopol", "merger", "acquisition", "consumer", "market", "compan", "business", "firm", "bank", "financ", "stock", "investor", "patent", "regulat", "fine"),
    16: ("defen", "military", "army", "weapon", "troop", "missile"),
    17: ("technolog", "innovat", "scien", "research", "artificial intelligence", "ai", "digital", "internet", "software", "semiconductor", "chip", "data", "online", "platform", "telecom", "search engine"),
    18: ("export", "import", "tariff", "trade", "foreign investment", "joint venture", "foreign compan", "customs"),
    19: ("diplomat", "foreign minister", "sanction", "treaty", "summit", "bilateral", "united nations", "embassy"),
    20: ("election", "government operation", "bureaucra", "civil servant", "parliament", "ministry", "cabinet", "administration"),
    21: ("public land", "water resource", "national park", "forest", "mining", "natural resource"),
    23: ("culture", "cultural", "arts", "museum", "sport", "film", "music", "tourism"),
}  # fmt: skip
TITLE_WEIGHT = 3.0
LEAD_WEIGHT = 2.0


def _stem_pattern(code: int) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(s) for s in TOPIC_STEMS[code]) + r")", re.I)


_STEM_PATTERNS = {code: _stem_pattern(code) for code in TOPIC_STEMS}


def topic_scores(seg: SegmentedArticle, title: str | None = None) -> dict[int, float]:
    """Keyword hits per topic; the title and the lead paragraph count extra (news puts the topic first)."""
    scores: dict[int, float] = {code: 0.0 for code in TOPIC_STEMS}
    lead_end = seg.paragraphs[1][1] if len(seg.paragraphs) > 1 else len(seg.text)
    for code, pattern in _STEM_PATTERNS.items():
        if title:
            scores[code] += TITLE_WEIGHT * len(pattern.findall(title))
        for sentence in seg.sentences:
            hits = len(pattern.findall(sentence.text))
            scores[code] += hits * (LEAD_WEIGHT if sentence.end <= lead_end else 1.0)
    return scores


# --------------------------------------------------------------------------- the article


@dataclass(frozen=True)
class ArticleTopics:
    """An article's topic shares (CAP codes only, summing to 1 when anything scored) and per-sentence
    classifier probabilities relative to an empty text's (above 1: the sentence reads as that topic)."""

    shares: dict[int, float]
    sentence_lift: np.ndarray  # (sentences, len(codes))
    codes: list[int]  # column order of sentence_lift

    def ranked(self) -> list[int]:
        return [c for c in sorted(self.shares, key=lambda c: (-self.shares[c], c)) if self.shares[c] > 0]


def encoder_probabilities(texts: Sequence[str], model: TopicModel, encoder: CapEncoder) -> np.ndarray:
    """The encoder's class probabilities in the columns of the linear model's `classes` (0 for a code it lacks)."""
    tuned = encoder.probabilities(texts)
    column = {int(c): i for i, c in enumerate(encoder.classes)}
    aligned = np.zeros((len(texts), len(model.classes)), dtype=np.float64)
    for j, code in enumerate(model.classes):
        if int(code) in column:
            aligned[:, j] = tuned[:, column[int(code)]]
    return aligned


def mix(linear: np.ndarray, tuned: np.ndarray) -> np.ndarray:
    """The classifier: the linear model's and the encoder's probabilities, weighted by ENCODER_WEIGHT."""
    return (1 - ENCODER_WEIGHT) * linear + ENCODER_WEIGHT * tuned


def classifier_probabilities(
    texts: Sequence[str], encoder_texts: Sequence[str] | None = None, model: TopicModel | None = None, encoder: CapEncoder | None = None
) -> np.ndarray:
    """The classifier's class probabilities, columns in the linear model's `classes` order: the linear model
    reads `texts`, the encoder `encoder_texts` (the same texts when not given)."""
    model = model or load_topic_model()
    encoder = encoder or load_cap_encoder()
    return mix(model.probabilities(texts), encoder_probabilities(texts if encoder_texts is None else encoder_texts, model, encoder))


def _policy_only(model: TopicModel, probs: np.ndarray) -> tuple[np.ndarray, list[int]]:
    columns = model.policy_columns
    probs = probs[:, columns]
    return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12), [int(c) for c in model.classes[columns]]


def article_topics(
    seg: SegmentedArticle, title: str | None = None, model: TopicModel | None = None, encoder: CapEncoder | None = None
) -> ArticleTopics:
    """CLASSIFIER_SHARE of the classifier's reading of the article (the linear model reads title and body as
    one text, the encoder title and lead), the rest keyword shares; with no keyword hit, the classifier alone.
    Sentence lifts come from the linear model alone (one encoder pass per article keeps the rules path fast)."""
    model = model or load_topic_model()
    sentences = [s.text for s in seg.sentences]
    head = title + "\n" if title and title.strip() else ""
    lead = head + (sentences[0] if sentences else "")
    document = classifier_probabilities([head + " ".join(sentences)], [lead], model, encoder)
    probs, codes = _policy_only(model, np.vstack([document, model.probabilities(["", *sentences])]))
    document, empty, per_sentence = probs[0], probs[1], probs[2:]
    keywords = topic_scores(seg, title)
    keyword_total = sum(keywords.values())
    shares = {c: float(p) for c, p in zip(codes, document, strict=True)}
    if keyword_total:
        shares = {c: CLASSIFIER_SHARE * p + (1 - CLASSIFIER_SHARE) * keywords.get(c, 0.0) / keyword_total for c, p in shares.items()}
    return ArticleTopics(shares=shares, sentence_lift=per_sentence / np.maximum(empty, 1e-12), codes=codes)


def choose_codes(topics: ArticleTopics) -> list[int]:
    """The main topic, plus the runner-up when its share is at least SECOND_TOPIC_SHARE of the main one's."""
    ranked = topics.ranked()
    if not ranked:
        return []
    main = ranked[0]
    return [main] + [c for c in ranked[1:2] if topics.shares[c] >= SECOND_TOPIC_SHARE * topics.shares[main]]


def topic_evidence(seg: SegmentedArticle, codes: list[int], topics: ArticleTopics | None = None) -> dict[int, list[tuple[int, int]]]:
    """For each code, the sentences that read most as that topic: those using its keywords or whose
    strongest classifier lift is that code, ranked by lift, at most EVIDENCE_LIMIT, in text order."""
    topics = topics or article_topics(seg)
    strongest = topics.sentence_lift.argmax(axis=1) if len(topics.sentence_lift) else np.zeros(0, dtype=int)
    evidence: dict[int, list[tuple[int, int]]] = {}
    for code in codes:
        column = topics.codes.index(code) if code in topics.codes else None
        pattern = _STEM_PATTERNS.get(code)
        lift = topics.sentence_lift[:, column] if column is not None else np.zeros(len(seg.sentences))
        pool = [
            i for i, s in enumerate(seg.sentences)
            if (column is not None and strongest[i] == column and lift[i] > 1.0) or (pattern is not None and pattern.search(s.text))
        ] or ([int(np.argmax(lift))] if column is not None and len(lift) else [])
        chosen = sorted(sorted(pool, key=lambda i: -lift[i])[:EVIDENCE_LIMIT])
        evidence[code] = [(seg.sentences[i].start, seg.sentences[i].end) for i in chosen]
    return evidence


TIE_SHARE = 0.85


def llm_tie_break(llm: StructuredLLM, text: str, title: str | None, topics: ArticleTopics, codes: list[int]) -> list[int]:
    """When the two leaders' shares are within TIE_SHARE of each other, the model picks the main topic
    among them (an answer outside the two is ignored); clear leads are not asked about."""
    ranked = topics.ranked()
    if len(ranked) < 2 or topics.shares[ranked[1]] < TIE_SHARE * topics.shares[ranked[0]]:
        return codes
    main = ask_main_topic(llm, topic_system(text, title), ranked[:2])
    if main not in ranked[:2]:
        return codes
    return [main] + [c for c in ranked[:2] if c != main]


def code_topics(
    seg: SegmentedArticle, title: str | None, llm: StructuredLLM | None = None
) -> tuple[list[int], dict[int, list[tuple[int, int]]]]:
    """The article's CAP codes (main topic first) and, for each, the sentences that show it."""
    topics = article_topics(seg, title)
    codes = choose_codes(topics)
    if llm is not None and ASK_TIE_BREAK:
        codes = llm_tie_break(llm, seg.text, title, topics, codes)
    return codes, topic_evidence(seg, codes, topics)
