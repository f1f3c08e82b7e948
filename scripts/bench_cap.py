"""CAP major-topic accuracy on held-out NYT front-page headlines (the benchmark of pipeline/topics.py).

Default: the shipped artifact (pipeline/resources/cap_topics_v2.npz, fitted on 1996-2004 by
scripts/train_topics.py) on the 2005-2006 headlines it never saw. `--split random` fits the same recipe
on a seeded stratified 80 % and scores the other 20 % (comparable with random-split figures; ~2.5 min).

Printed figures:
  all codes      accuracy over every held-out headline, the 7 NYT media codes (24 26 27 29 30 31 99) included
  policy rows    accuracy over headlines coded 1-23 only (predictions still range over all 28 codes)
  policy only    headlines coded 1-23, prediction restricted to CAP major topics, as the pipeline emits them
each also for text_type article / caption, and the artifact's size and load time.

usage: .venv/bin/python scripts/bench_cap.py [--corpus ../shared/corpora/cap-nyt-headlines] [--split time|random] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pipeline.topics import MODEL_FILE, TopicModel  # noqa: E402
from train_topics import DEFAULT_CORPUS, MEDIA_CODES, Headline, read_headlines, split_rows, train  # noqa: E402


def accuracies(model: TopicModel, rows: list[Headline]) -> dict[str, float | int]:
    gold = np.array([r.code for r in rows])
    texts = [r.title for r in rows]
    predicted = model.predict(texts)
    policy_predicted = model.predict(texts, policy_only=True)
    policy = ~np.isin(gold, list(MEDIA_CODES))
    return {
        "n": len(rows),
        "n_policy": int(policy.sum()),
        "all_codes": round(float(np.mean(predicted == gold)), 4),
        "policy_rows": round(float(np.mean(predicted[policy] == gold[policy])), 4),
        "policy_only": round(float(np.mean(policy_predicted[policy] == gold[policy])), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=["time", "random"], default="time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    fit, held = split_rows(read_headlines(args.corpus), args.split)
    started = time.monotonic()
    if args.split == "time":
        model = TopicModel.load(MODEL_FILE)
        source = f"{MODEL_FILE.relative_to(ROOT)} ({MODEL_FILE.stat().st_size / 1e6:.1f} MB, loaded in {time.monotonic() - started:.2f} s)"
    else:
        model = train(fit)
        source = f"the same recipe fitted on the random 80 % in {time.monotonic() - started:.0f} s"
    figures: dict[str, object] = {"split": args.split, "fit": len(fit), "model": source}
    figures["held_out"] = accuracies(model, held)
    for kind in ("article", "caption"):
        figures[kind] = accuracies(model, [r for r in held if r.text_type == kind])
    started = time.monotonic()
    figures["train"] = accuracies(model, fit)
    figures["headlines_per_second"] = round(len(fit) / (time.monotonic() - started) * 3, 0)  # 3 predictions a row
    print(f"CAP headlines, {args.split} split: fitted on {len(fit)}, held out {len(held)}; model: {source}")
    print(f"{'':10} {'n':>6} {'all codes':>10} {'policy rows':>12} {'policy only':>12}")
    for name in ("held_out", "article", "caption", "train"):
        row = figures[name]
        assert isinstance(row, dict)
        print(f"{name:10} {row['n']:>6} {row['all_codes']:>10.3f} {row['policy_rows']:>12.3f} {row['policy_only']:>12.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
