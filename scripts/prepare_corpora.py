"""Convert the labelled corpora in ../shared/corpora into gold-format folders for scoring.

    .venv/bin/python scripts/prepare_corpora.py                       # every split, into ~/.cache/news-records/corpora
    .venv/bin/python scripts/prepare_corpora.py polnear-dev conll-dev --out /tmp/corpora
    .venv/bin/python scripts/prepare_corpora.py --force               # convert again even if up to date

Each split becomes OUT/<split>/articles/*.txt, OUT/<split>/gold/*.json and OUT/<split>/conversion.json,
made by the converters in ../shared/corpora/tools/ run unchanged (`pipeline.corpora`). A split is
converted again only when its converter or source changed. PolNeAR annotation files the converter
rejects ("offset mismatch") are dropped one at a time and listed here and in conversion.json.
The texts are third-party: keep OUT outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.corpora import SPLITS, corpora_dir, default_cache, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", nargs="*", metavar="SPLIT", help=f"any of {', '.join(sorted(SPLITS))} (default: all)")
    parser.add_argument("--out", type=Path, default=default_cache(), help="folder for the converted splits (default: %(default)s)")
    parser.add_argument("--corpora", type=Path, default=corpora_dir(), help="the corpora folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="convert even when the folder is up to date")
    args = parser.parse_args()
    if unknown := [name for name in args.splits if name not in SPLITS]:
        parser.error(f"unknown split {', '.join(unknown)}; known: {', '.join(sorted(SPLITS))}")
    for name in args.splits or sorted(SPLITS):
        conversion = prepare(name, args.out / name, corpora=args.corpora, force=args.force)
        dropped = f"; rejected annotation files left out: {', '.join(conversion.dropped)}" if conversion.dropped else ""
        print(f"{name}: {conversion.documents} articles in {conversion.out}{dropped}")


if __name__ == "__main__":
    main()
