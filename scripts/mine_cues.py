#!/usr/bin/env python3
"""Mine reporting-verb cues and their content frames from PolNeAR train attribution spans.

Data: PolNeAR (networkdynamics/PolNeAR @ c3eee833c035, `data/train/{text,attributions}`; code MIT, no
licence stated for the annotations; texts are copyrighted news, read in place and never copied). Only the
train split is read; dev is for measuring. One annotation file per article (the first by name), as in
`../shared/corpora/tools/polnear_to_gold.py`.

For every verb lemma the script counts how often a verb token with that lemma occurs in the train texts
(`seen`) and how often it heads a gold Cue span (`cue`); `precision` = cue / seen. For cue tokens it also
records how the Content is attached to the verb in spaCy's parse (`frames`): a clausal complement
(`ccomp`), the direct object (`dobj`), an open complement (`xcomp`), a prepositional object (`prep:for`,
`prep:of`, ...), or anything else (`other`). A lemma is kept when it is a cue at least `--min-cue` times
with precision at least `--min-precision`; a frame is kept for a lemma when it carries at least
`--min-frame-share` of that lemma's cues. The output (pipeline/resources/reporting_verbs.json) states
its source, thresholds and counts, so the lexicon is reproducible and not picked by hand.

usage: .venv/bin/python scripts/mine_cues.py [--polnear ../shared/corpora/polnear] [--out pipeline/resources/reporting_verbs.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.segment import load_nlp  # noqa: E402

SOURCE = "PolNeAR train split (networkdynamics/PolNeAR @ c3eee833c035, data/train), first annotation file per article"


def parse_ann(path: Path) -> tuple[dict[str, tuple[str, list[tuple[int, int]]]], list[dict[str, list[str]]]]:
    """brat standoff: spans by id (type, pieces) and events (role -> span ids)."""
    spans: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    events: list[dict[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        parts = line.split("\t")
        if line.startswith("T") and len(parts) >= 2:
            typ, rng = parts[1].split(" ", 1)
            spans[parts[0]] = (typ, [(int(a), int(b)) for a, b in (p.split() for p in rng.split(";"))])
        elif line.startswith("E") and len(parts) >= 2:
            roles: dict[str, list[str]] = defaultdict(list)
            for arg in parts[1].split():
                role, tid = arg.split(":", 1)
                roles[role].append(tid)
            events.append(roles)
    return spans, events


def articles(split_dir: Path) -> list[tuple[str, Path]]:
    anns = sorted((split_dir / "attributions").glob("*.ann"))
    found = []
    for text_file in sorted((split_dir / "text").glob("*.txt")):
        first = next((a for a in anns if a.stem.rsplit("_", 1)[0] == text_file.stem), None)
        if first is not None:
            found.append((text_file.read_text(encoding="utf-8"), first))
    return found


def frame_of(verb, content_pieces: list[tuple[int, int]]) -> str:  # noqa: ANN001 (spaCy Token)
    """How the content attaches to the cue verb: the dependency of the verb's child that covers it."""
    for child in verb.children:
        lo, hi = child.left_edge.idx, child.right_edge.idx + len(child.right_edge.text)
        if any(a < hi and lo < b for a, b in content_pieces):
            if child.dep_ == "prep":
                return f"prep:{child.lower_}"
            if child.dep_ in ("ccomp", "dobj", "xcomp", "advcl"):
                return child.dep_
    return "other"


def mine(split_dir: Path) -> tuple[Counter, Counter, dict[str, Counter], Counter]:
    nlp = load_nlp()
    seen: Counter = Counter()
    cue: Counter = Counter()
    frames: dict[str, Counter] = defaultdict(Counter)
    phrases: Counter = Counter()
    for text, ann in articles(split_dir):
        doc = nlp(text)
        for token in doc:
            if token.pos_ == "VERB":
                seen[token.lemma_.lower()] += 1
        spans, events = parse_ann(ann)
        for roles in events:
            content = [p for t in roles.get("Content", []) + roles.get("Content2", []) for p in spans[t][1]]
            cue_pieces = [p for t in roles.get("Cue", []) for p in spans[t][1]]
            if not content or not cue_pieces:
                continue
            a, b = cue_pieces[0]
            cue_span = doc.char_span(a, b, alignment_mode="expand")
            if cue_span is None:
                continue
            heads = [t for t in cue_span if t.pos_ == "VERB"]
            if not heads:
                phrases[cue_span.text.lower()] += 1
                continue
            verb = heads[0]
            lemma = verb.lemma_.lower()
            cue[lemma] += 1
            frames[lemma][frame_of(verb, content)] += 1
    return seen, cue, frames, phrases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--polnear", type=Path, default=ROOT.parent / "shared" / "corpora" / "polnear")
    ap.add_argument("--out", type=Path, default=ROOT / "pipeline" / "resources" / "reporting_verbs.json")
    ap.add_argument("--min-cue", type=int, default=8)
    ap.add_argument("--min-precision", type=float, default=0.3)
    ap.add_argument("--min-frame-share", type=float, default=0.15)
    args = ap.parse_args()
    seen, cue, frames, phrases = mine(args.polnear / "train")
    verbs = {}
    for lemma, n in sorted(cue.items(), key=lambda x: -x[1]):
        precision = n / max(seen[lemma], n)
        if n < args.min_cue or precision < args.min_precision:
            continue
        kept = sorted(f for f, c in frames[lemma].items() if f != "other" and c / n >= args.min_frame_share)
        verbs[lemma] = {"cue": n, "seen": max(seen[lemma], n), "precision": round(precision, 3), "frames": kept,
                        "frame_counts": dict(frames[lemma].most_common())}
    out = {
        "source": SOURCE,
        "script": "scripts/mine_cues.py",
        "thresholds": {"min_cue": args.min_cue, "min_precision": args.min_precision, "min_frame_share": args.min_frame_share},
        "verbs": verbs,
        "non_verb_cues": dict(phrases.most_common(30)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(verbs)} reporting verbs -> {args.out}")


if __name__ == "__main__":
    main()
