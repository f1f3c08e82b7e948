"""Train the organisation recogniser shipped in pipeline/resources/org_ner_v1/ from CoNLL++ train.

The recogniser is a copy of the installed en_core_web_sm NER (its own tok2vec and transition head,
trained on OntoNotes) fine-tuned on CoNLL's four types (ORG, PER, LOC, MISC); the pipeline reads only
its ORG mentions. It runs beside spaCy's NER, not instead of it, so every other component and entity
the pipeline uses is untouched.

Data: CoNLL-2003 English with the CoNLL++ corrections (ZihanWangKi/CrossWeigh, Apache-2.0; Reuters
RCV1 texts under Reuters' research terms), read from ../shared/corpora/conllpp/. Only the train split
fits the model; dev is for measuring (``--dev``). The texts never enter the repository: only weights.
Documents are rebuilt the way ../shared/corpora/tools/conll_to_gold.py rebuilds them (one paragraph a
sentence, detokenised), so training sees the same text shape the pipeline gets.

usage: .venv/bin/python scripts/train_orgs.py [--corpus ../shared/corpora/conllpp] [--epochs 6] [--out pipeline/resources/org_ner_v1]
About 2.5 minutes an epoch on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.segment import ORG_NER_DIR, SPACY_MODEL  # noqa: E402

CONLL_LABELS = ("ORG", "PER", "LOC", "MISC")

Token = tuple[str, str]  # (text, IOB tag)


def read_conll(path: Path) -> list[list[list[Token]]]:
    """Documents -> sentences -> (token, tag)."""
    docs: list[list[list[Token]]] = []
    sentence: list[Token] = []
    current: list[list[Token]] | None = None
    for line in [*path.read_text(encoding="utf-8").splitlines(), "-DOCSTART- -X- -X- O"]:
        if line.startswith("-DOCSTART-"):
            if sentence and current is not None:
                current.append(sentence)
            if current:
                docs.append(current)
            current, sentence = [], []
        elif not line.strip():
            if sentence and current is not None:
                current.append(sentence)
            sentence = []
        else:
            token, *_, tag = line.split()
            sentence.append((token, tag))
    return docs


def detokenise(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The converter's detokenisation, keeping each token's character offsets."""
    text = ""
    offsets: list[tuple[int, int]] = []
    for i, token in enumerate(tokens):
        glue = i == 0 or re.fullmatch(r"[,.;:!?%)\]']\S*|n't|'s", token) is not None or re.fullmatch(r"[(\[$]", tokens[i - 1]) is not None
        if not glue:
            text += " "
        offsets.append((len(text), len(text) + len(token)))
        text += token
    return text, offsets


def entity_spans(sentence: list[Token], offsets: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    open_span: list | None = None
    for (_, tag), (start, end) in zip(sentence, offsets, strict=True):
        label = tag[2:] if tag != "O" else None
        if label and open_span and tag.startswith("I-") and open_span[2] == label:
            open_span[1] = end
            continue
        if open_span:
            spans.append(tuple(open_span))
        open_span = [start, end, label] if label else None
    if open_span:
        spans.append(tuple(open_span))
    return spans


def to_example(nlp: Language, document: list[list[Token]]) -> Example:
    paragraphs: list[str] = []
    ents: list[tuple[int, int, str]] = []
    at = 0
    for sentence in document:
        text, offsets = detokenise([t for t, _ in sentence])
        ents += [(s + at, e + at, label) for s, e, label in entity_spans(sentence, offsets)]
        paragraphs.append(text)
        at += len(text) + 2
    doc: Doc = nlp.make_doc("\n\n".join(paragraphs))
    spans = [doc.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in ents]
    doc_ents = []
    for span in spans:
        if span is not None and not any(span.start < o.end and o.start < span.end for o in doc_ents):
            doc_ents.append(span)
    reference = doc.copy()
    reference.ents = doc_ents
    return Example(nlp.make_doc(doc.text), reference)


def build(seed: int) -> Language:
    """en_core_web_sm's tokenizer and NER, with CoNLL's labels added to the NER."""
    fix_random_seed(seed)
    nlp = spacy.load(SPACY_MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"])
    for label in CONLL_LABELS:
        nlp.get_pipe("ner").add_label(label)
    return nlp


def org_scores(nlp: Language, examples: list[Example]) -> dict[str, float]:
    recogniser = nlp.get_pipe("ner")
    predicted = [recogniser(nlp.make_doc(eg.reference.text)) for eg in examples]
    gold = [{(e.start_char, e.end_char) for e in eg.reference.ents if e.label_ == "ORG"} for eg in examples]
    found = [{(e.start_char, e.end_char) for e in doc.ents if e.label_ == "ORG"} for doc in predicted]
    tp = sum(len(g & f) for g, f in zip(gold, found, strict=True))
    n_found, n_gold = sum(map(len, found)), sum(map(len, gold))
    p, r = tp / max(n_found, 1), tp / max(n_gold, 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "conllpp")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ORG_NER_DIR)
    parser.add_argument("--dev", action="store_true", help="print mention-level ORG figures on dev after each epoch")
    parser.add_argument(
        "--even-only", action="store_true",
        help="fit on the even-numbered train documents only, leaving the odd ones unseen (cross-fitted figures on train)",
    )  # fmt: skip
    parser.add_argument(
        "--save-each-epoch", action="store_true",
        help="also write the weights after every epoch to OUT/epoch-N (choosing the epoch count on the unseen odd half)",
    )  # fmt: skip
    args = parser.parse_args()

    nlp = build(args.seed)
    documents = read_conll(args.corpus / "train.txt")
    train = [to_example(nlp, d) for i, d in enumerate(documents) if not (args.even_only and i % 2)]
    # With --even-only the odd documents were never fitted: mention-level figures on them are honest.
    unseen = [to_example(nlp, d) for i, d in enumerate(documents) if i % 2] if args.even_only else []
    dev = [to_example(nlp, d) for d in read_conll(args.corpus / "dev.txt")] if args.dev else []
    # Only the new head is initialised: the sourced tok2vec keeps its weights (and the vocab its tables).
    # Fine-tuning: the sourced weights are the starting point (no re-initialisation).
    optimizer = nlp.resume_training()
    rng = random.Random(args.seed)
    for epoch in range(args.epochs):
        started, losses = time.monotonic(), {}
        rng.shuffle(train)
        for batch in minibatch(train, size=8):
            nlp.update(batch, sgd=optimizer, losses=losses, drop=0.2)
        line = f"epoch {epoch + 1}: loss {losses.get('ner', 0):.0f} ({time.monotonic() - started:.0f} s)"
        if unseen:
            scores = org_scores(nlp, unseen)
            line += " odd-train ORG mentions P {precision:.3f} R {recall:.3f} F1 {f1:.3f}".format(**scores)
        if dev:
            scores = org_scores(nlp, dev)
            line += " dev ORG mentions P {precision:.3f} R {recall:.3f} F1 {f1:.3f}".format(**scores)
        print(line, flush=True)
        if args.save_each_epoch:
            (args.out / f"epoch-{epoch + 1}").mkdir(parents=True, exist_ok=True)
            nlp.get_pipe("ner").to_disk(args.out / f"epoch-{epoch + 1}", exclude=["vocab"])
    args.out.mkdir(parents=True, exist_ok=True)
    nlp.get_pipe("ner").to_disk(args.out, exclude=["vocab"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
