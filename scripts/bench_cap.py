"""CAP major-topic accuracy on held-out NYT front-page headlines (the benchmark of pipeline/topics.py).

Default: the shipped classifier (pipeline/topics.py `classifier_probabilities`: the linear model
pipeline/resources/cap_topics_v2.npz of scripts/train_topics.py and the fine-tuned encoder
cap_encoder_v1.gguf of scripts/train_cap_encoder.py, both fitted on the same seeded stratified 80 %) on the
other 20 %, through the same code the pipeline runs (llama.cpp for the encoder). `--split time` fits the
linear recipe on 1996-2004 (~2.5 min) and scores 2005-2006; with `--encoder-dir DIR` (a build of
`train_cap_encoder.py --split time --out-dir DIR`) the encoder part too, else the linear model alone.

Printed figures, for the classifier and (all codes only) for each part alone:
  all codes      accuracy over every held-out headline, the 7 NYT media codes (24 26 27 29 30 31 99) included
  policy rows    accuracy over headlines coded 1-23 only (predictions still range over all 28 codes)
  policy only    headlines coded 1-23, prediction restricted to CAP major topics, as the pipeline emits them
each also for text_type article / caption, and the headlines per second of the classifier. Last, the
keyword stems of pipeline/topics.py (which decide an article's codes wherever they match) against the
classifier, on the held-out policy headlines where a stem matches.

usage: .venv/bin/python scripts/bench_cap.py [--corpus ../shared/corpora/cap-nyt-headlines] [--split random|time] [--encoder-dir DIR] [--json out.json]
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

from pipeline.cap_encoder import ENCODER_FILE, HEAD_FILE, CapEncoder  # noqa: E402
from pipeline.segment import segment  # noqa: E402
from pipeline.topics import MODEL_FILE, TopicModel, encoder_probabilities, mix, topic_scores  # noqa: E402
from train_topics import DEFAULT_CORPUS, MEDIA_CODES, Headline, read_headlines, split_rows, train  # noqa: E402


def accuracies(probs: np.ndarray, model: TopicModel, rows: list[Headline]) -> dict[str, float | int]:
    """`probs` in the columns of `model.classes`; policy-only predictions masked as `TopicModel.predict` does."""
    gold = np.array([r.code for r in rows])
    predicted = model.classes[probs.argmax(axis=1)]
    policy_predicted = model.classes[np.where(model.policy_columns, probs, -1.0).argmax(axis=1)]
    policy = ~np.isin(gold, list(MEDIA_CODES))
    return {
        "n": len(rows),
        "n_policy": int(policy.sum()),
        "all_codes": round(float(np.mean(predicted == gold)), 4),
        "policy_rows": round(float(np.mean(predicted[policy] == gold[policy])), 4),
        "policy_only": round(float(np.mean(policy_predicted[policy] == gold[policy])), 4),
    }


def keywords_against_classifier(probs: np.ndarray, model: TopicModel, rows: list[Headline]) -> dict[str, float | int]:
    """On policy headlines where a keyword stem matches (the headline read as an article's title), how often
    the stems' top topic is the gold one, and how often the classifier's (CAP codes only) is."""
    empty = segment("")
    stems, classifier, gold = [], [], []
    for row, p in zip(rows, np.where(model.policy_columns, probs, -1.0), strict=True):
        scores = topic_scores(empty, row.title)
        if row.code in MEDIA_CODES or not any(scores.values()):
            continue
        stems.append(max(scores, key=lambda c: (scores[c], -c)))
        classifier.append(int(model.classes[p.argmax()]))
        gold.append(row.code)
    return {
        "n": len(gold),
        "stems": round(float(np.mean(np.array(stems) == np.array(gold))), 4),
        "classifier": round(float(np.mean(np.array(classifier) == np.array(gold))), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=["random", "time"], default="random")
    parser.add_argument("--encoder-dir", type=Path, help="with --split time: the encoder built on 1996-2004 (GGUF and head)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    fit, held = split_rows(read_headlines(args.corpus), args.split)
    started = time.monotonic()
    encoder: CapEncoder | None = None
    if args.split == "random":
        model = TopicModel.load(MODEL_FILE)
        encoder = CapEncoder.load()
        source = f"shipped: {MODEL_FILE.name} ({MODEL_FILE.stat().st_size / 1e6:.1f} MB) and {ENCODER_FILE.name} ({ENCODER_FILE.stat().st_size / 1e6:.1f} MB)"
    else:
        model = train(fit)
        source = f"the linear recipe fitted on 1996-2004 in {time.monotonic() - started:.0f} s"
        if args.encoder_dir:
            encoder = CapEncoder.load(args.encoder_dir / ENCODER_FILE.name, args.encoder_dir / HEAD_FILE.name)
            source += f", the encoder of {args.encoder_dir}"
    texts = [r.title for r in held]
    started = time.monotonic()
    linear = model.probabilities(texts)
    parts = {"linear": linear}
    if encoder is not None:
        parts["encoder"] = encoder_probabilities(texts, model, encoder)
        parts["classifier"] = mix(linear, parts["encoder"])
    seconds = time.monotonic() - started
    probs = parts.get("classifier", linear)
    figures: dict[str, object] = {"split": args.split, "fit": len(fit), "model": source}
    figures["parts_all_codes"] = {name: accuracies(p, model, held)["all_codes"] for name, p in parts.items()}
    figures["held_out"] = accuracies(probs, model, held)
    for kind in ("article", "caption"):
        chosen = [i for i, r in enumerate(held) if r.text_type == kind]
        figures[kind] = accuracies(probs[chosen], model, [held[i] for i in chosen])
    figures["headlines_per_second"] = round(len(held) / seconds, 0)
    print(f"CAP headlines, {args.split} split: fitted on {len(fit)}, held out {len(held)}; {source}")
    print("held-out accuracy (all codes): " + ", ".join(f"{name} {value:.3f}" for name, value in figures["parts_all_codes"].items()))  # type: ignore[union-attr]
    print(f"{'':10} {'n':>6} {'all codes':>10} {'policy rows':>12} {'policy only':>12}")
    for name in ("held_out", "article", "caption"):
        row = figures[name]
        assert isinstance(row, dict)
        print(f"{name:10} {row['n']:>6} {row['all_codes']:>10.3f} {row['policy_rows']:>12.3f} {row['policy_only']:>12.3f}")
    print(f"{figures['headlines_per_second']:.0f} headlines/s")
    figures["keyword_headlines"] = kw = keywords_against_classifier(probs, model, held)
    print(f"policy headlines with a keyword stem: {kw['n']}; top topic right: stems {kw['stems']:.3f}, classifier {kw['classifier']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
