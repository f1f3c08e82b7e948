"""Train the CAP topic classifier shipped as pipeline/resources/cap_topics_v2.npz from NYT front-page headlines.

Data: 31,034 New York Times front-page headlines (1996-2006) coded with Comparative Agendas Project major
topics by Amber Boydstun (*Making the News*, 2013), as published in poltextlab/nyt_hybrid_classification_workflow
(MIT repository; data from the Comparative Agendas Project), read from ../shared/corpora/cap-nyt-headlines/.
The headlines never enter the repository: only vocabulary, idf and weights.

Split (`split_rows`, shared with scripts/bench_cap.py and scripts/train_cap_encoder.py): by default a
seeded stratified 80 % fits the model and the other 20 % (6,207 rows) is held out, the split the CAP
target is stated on, and the one the shipped fine-tuned encoder (scripts/train_cap_encoder.py) was fitted
on, so that their average can be scored on rows neither saw. `--split time` fits on 1996-2004 and holds
out 2005-2006 (4,844 rows), a harder test: a random split lets near-identical headlines of the same
story sit on both sides, a split by date asks what the model does on later news.

Model: the headline as written (no names blanked: see pipeline/topics.py), word 1-2-gram and
char_wb 2-5-gram tf-idf (pipeline/topics.py defines the features), a linear
SVM (scikit-learn LinearSVC) over all 28 corpus codes, with per-class sigmoid calibration fitted on
3-fold cross-validated scores (CalibratedClassifierCV, ensemble=False), so articles can weigh sentences
by probability. Deterministic: same corpus, same scikit-learn -> same weights.

usage: .venv/bin/python scripts/train_topics.py [--corpus ../shared/corpora/cap-nyt-headlines] [--split random|time] [--out PATH]
About two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.topics import MODEL_FILE, TopicModel, char_vectorizer, tfidf_block, word_vectorizer  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "cap-nyt-headlines"
MEDIA_CODES = frozenset({24, 26, 27, 29, 30, 31, 99})  # NYT codes for non-policy news (corpus README)
HELD_OUT_FROM_YEAR = 2005
RANDOM_SEED = 0
WORD_MIN_DF = 2
CHAR_MIN_DF = 3
SVM_C = 0.3


@dataclass(frozen=True)
class Headline:
    id: str
    code: int
    year: int
    title: str
    text_type: str  # article or caption


def read_headlines(corpus: Path) -> list[Headline]:
    with (corpus / "text_type.csv").open(encoding="utf-8") as handle:
        types = {row["id"]: row["text_type"] for row in csv.DictReader(handle, delimiter=";")}
    with (corpus / "valid_start.csv").open(encoding="utf-8") as handle:
        return [
            Headline(row["id"], int(row["majortopic"]), _year(row["date"]), row["title"], types.get(row["id"], "article"))
            for row in csv.DictReader(handle)
        ]


def _year(date: str) -> int:
    """Dates are m/d/yy for 1996-2006."""
    yy = int(date.rsplit("/", 1)[-1])
    return 1900 + yy if yy >= 50 else 2000 + yy


def split_rows(rows: list[Headline], how: str = "random") -> tuple[list[Headline], list[Headline]]:
    """(fit, held out). `time`: years before HELD_OUT_FROM_YEAR fit; `random`: seeded stratified 80/20."""
    if how == "time":
        return [r for r in rows if r.year < HELD_OUT_FROM_YEAR], [r for r in rows if r.year >= HELD_OUT_FROM_YEAR]
    if how == "random":
        fit, held = train_test_split(rows, test_size=0.2, random_state=RANDOM_SEED, stratify=[r.code for r in rows])
        return list(fit), list(held)
    raise ValueError(f"unknown split {how!r}: time or random")


def train(rows: list[Headline]) -> TopicModel:
    texts = [r.title for r in rows]
    labels = np.array([r.code for r in rows])
    words, chars = word_vectorizer(min_df=WORD_MIN_DF), char_vectorizer(min_df=CHAR_MIN_DF)
    word_counts, char_counts = words.fit_transform(texts), chars.fit_transform(texts)
    word_idf = TfidfTransformer(sublinear_tf=True).fit(word_counts).idf_
    char_idf = TfidfTransformer(sublinear_tf=True).fit(char_counts).idf_
    features = sparse.hstack([tfidf_block(word_counts, word_idf), tfidf_block(char_counts, char_idf)]).tocsr()
    classifier = CalibratedClassifierCV(LinearSVC(C=SVM_C, random_state=RANDOM_SEED), method="sigmoid", cv=3, ensemble=False).fit(features, labels)
    [calibrated] = classifier.calibrated_classifiers_
    svm = calibrated.estimator
    model = TopicModel(
        word_vocabulary=dict(words.vocabulary_),
        word_idf=word_idf,
        char_vocabulary=dict(chars.vocabulary_),
        char_idf=char_idf,
        coef=svm.coef_.astype(np.float32),
        intercept=svm.intercept_.astype(np.float32),
        calibration_a=np.array([c.a_ for c in calibrated.calibrators], dtype=np.float32),
        calibration_b=np.array([c.b_ for c in calibrated.calibrators], dtype=np.float32),
        classes=np.array(classifier.classes_, dtype=int),
    )
    check = texts[:200]
    drift = np.abs(model.probabilities(check) - classifier.predict_proba(features[:200])).max()
    if drift > 1e-3:
        raise AssertionError(f"the shipped model's probabilities differ from scikit-learn's by {drift:.4f}")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=["random", "time"], default="random")
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    args = parser.parse_args()
    started = time.monotonic()
    fit, held = split_rows(read_headlines(args.corpus), args.split)
    model = train(fit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    fit_accuracy = float(np.mean(model.predict([r.title for r in fit]) == np.array([r.code for r in fit])))
    print(f"fitted on {len(fit)} headlines ({args.split} split; {len(held)} held out), train accuracy {fit_accuracy:.3f}")
    print(f"{len(model.word_vocabulary)} word + {len(model.char_vocabulary)} char features, {len(model.classes)} classes")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
