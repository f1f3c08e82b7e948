#!/usr/bin/env python3
"""Which PolNeAR attributions the records' `quotes` find, by kind of cue and kind of source.

PolNeAR annotates every attribution: speech, but also attitudes and actions ("supports", "wants",
"endorsed", "declined to comment") and sources of every sort ("Democrats", "officials", none at all).
This project's guidelines (../shared/eval-dev/README.md) count only attributed statements of named people
and organisations. The table splits PolNeAR's attributions (raw brat events, one per Content; the
converter may split one into several gold quotes) by

- cue: `direct` (the content opens with a quotation mark), `speech verb` (the cue's last word is one of
  the hand-listed verbs of saying, `candidates.LEGACY_SPEECH_VERBS`, or the cue is "according to"),
  `mined verb` (a verb the lexicon mined from PolNeAR train adds: many are attitudes or actions,
  "support", "endorse", "want"), `other` (other verbs, nouns, colons);
- source: `none`, `pronoun` (he, she, they, ...), `capitalised` (has a capitalised word after its first:
  names, but also "Senate Republicans"), `lower` ("officials", "the campaign");

and gives for each the share that a record quote matches (the evaluator's text rule). Run it on records
written by `news-records evaluate` (or `run`) for the same split:

    .venv/bin/python scripts/polnear_breakdown.py --split dev --records /tmp/ev-dev

Only the train and dev splits are readable; PolNeAR's authors ask that test is never looked at.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.candidates import LEGACY_SPEECH_VERBS, SPEECH_VERBS  # noqa: E402
from pipeline.evaluate import quotes_match  # noqa: E402
from pipeline.segment import load_nlp  # noqa: E402
from scripts.mine_cues import articles, parse_ann  # noqa: E402

PRONOUNS = frozenset("he she they i we it you".split())
OPENING_MARKS = re.compile(r"[\"“”‘’']")


def cue_class(cue: str, content_start: int, text: str) -> str:
    if OPENING_MARKS.search(text[max(0, content_start - 2) : content_start + 1]):
        return "direct"
    words = cue.lower().split()
    if not words:
        return "other"
    if " ".join(words[-2:]) == "according to":
        return "speech verb"
    lemma = _lemma(words[-1])
    return "speech verb" if lemma in LEGACY_SPEECH_VERBS else "mined verb" if lemma in SPEECH_VERBS else "other"


@lru_cache(maxsize=None)
def _lemma(word: str) -> str:
    """spaCy's lemma of a cue word (cues repeat: "said" thousands of times)."""
    return load_nlp()(word)[0].lemma_.lower()


def source_class(source: str) -> str:
    if not source:
        return "none"
    if source.lower() in PRONOUNS:
        return "pronoun"
    return "capitalised" if re.search(r"\b[A-Z][a-z]", source) else "lower"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["train", "dev"], default="dev")
    parser.add_argument("--records", type=Path, required=True, help="an output folder of `news-records evaluate`/`run` for that split")
    parser.add_argument("--polnear", type=Path, default=ROOT.parent / "shared" / "corpora" / "polnear")
    args = parser.parse_args()

    records = {}
    for path in (args.records / "records").glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[record["article"]["source_file"]] = record
    total: Counter[tuple[str, str]] = Counter()
    found: Counter[tuple[str, str]] = Counter()
    for text, ann in articles(args.polnear / args.split):
        record = records.get(ann.stem.rsplit("_", 1)[0] + ".txt")
        if record is None:
            continue
        spans, events = parse_ann(ann)
        for event in events:
            pieces = sorted(p for t in event.get("Content", []) + event.get("Content2", []) for p in spans[t][1])
            if not pieces:
                continue
            content = " ".join(text[a:b] for a, b in pieces)
            cue = " ".join(text[a:b] for t in event.get("Cue", []) for a, b in spans[t][1]).strip()
            source = " ".join(text[a:b] for t in event.get("Source", []) for a, b in spans[t][1]).strip()
            key = (cue_class(cue, pieces[0][0], text), source_class(source))
            total[key] += 1
            found[key] += any(quotes_match(q["text"], content) for q in record["quotes"])
    print(f"PolNeAR {args.split}: {len(records)} records, {sum(total.values())} attributions, {sum(found.values())} found by `quotes`")
    print(f"{'cue':16} {'source':12} {'attributions':>12} {'found':>6} {'recall':>6}")
    for (cue, source), n in sorted(total.items(), key=lambda item: -item[1]):
        print(f"{cue:16} {source:12} {n:12} {found[(cue, source)]:6} {found[(cue, source)] / n:6.2f}")


if __name__ == "__main__":
    main()
