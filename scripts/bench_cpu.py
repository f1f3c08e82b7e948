"""CPU seconds per article of the plain rules pipeline (`extract_record`, no Prefect, no writing).

Process CPU time (`time.process_time`), not wall time: the figure stays meaningful on a machine shared
with other jobs. Models are loaded and one article extracted before the clock starts.

    python scripts/bench_cpu.py                                   # 30 PolNeAR train articles
    python scripts/bench_cpu.py --articles 60 --profile 25        # plus the 25 costliest functions (cProfile)
    python scripts/bench_cpu.py --batch 16                        # parse in batches (nlp.pipe) before extracting
    python scripts/bench_cpu.py --baseline --records /tmp/a       # spaCy's own components; dump records (minus time stamps)
    python scripts/bench_cpu.py --batch 16 --records /tmp/b
    python scripts/bench_cpu.py --compare /tmp/a /tmp/b           # compare two dumps: quotes, speakers, orgs, topics

Articles: every N-th text file of the corpus folder (sorted by name), so that a sample spans the corpus.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "polnear" / "train" / "text"


def load_articles(folders: list[Path], count: int) -> list:
    from pipeline.ingest import Article, IngestError, parse_text_article

    articles: list[Article] = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".txt", ".md") and not p.name.startswith("."))
        step = max(1, len(files) // count) if count else 1
        chosen = files[::step][:count] if count else files
        for path in chosen:
            try:
                articles.append(parse_text_article(path.read_text(encoding="utf-8"), path.name))
            except IngestError:
                continue
    return articles


def comparable(record) -> dict:
    """What a before/after comparison looks at: everything but the run's own time stamps and durations."""
    data = json.loads(record.model_dump_json())
    data["provenance"].pop("extracted_at", None)
    data["provenance"].pop("seconds", None)
    return data


def compare(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    differ = 0
    for name in names:
        a, b = before / name, after / name
        if not (a.exists() and b.exists()):
            print(f"{name}: only in {'before' if a.exists() else 'after'}")
            differ += 1
            continue
        ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
        if ra == rb:
            continue
        differ += 1
        for key in ("quotes", "organisations", "policy_areas"):
            if ra[key] != rb[key]:
                print(f"{name}: {key} differ ({len(ra[key])} -> {len(rb[key])})")
    print(f"{len(names)} records compared, {differ} differ")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, action="append", help=f"folder of .txt articles (repeatable; default {DEFAULT_CORPUS})")
    parser.add_argument("--articles", type=int, default=30, help="articles per corpus folder (every N-th file; 0 = all)")
    parser.add_argument("--batch", type=int, default=0, help="parse this many articles at a time with nlp.pipe first (0: one by one)")
    parser.add_argument("--profile", type=int, default=0, help="print the N functions with the most cumulative time (cProfile)")
    parser.add_argument("--records", type=Path, help="write each article's record (minus time stamps) to this folder")
    parser.add_argument("--baseline", action="store_true", help="spaCy's own attribute ruler and lemmatizer (segment.FAST_COMPONENTS off): the figure before the speed-ups")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two --records folders and exit")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)

    from pipeline import segment as segment_module

    if args.baseline:
        segment_module.FAST_COMPONENTS = False
    from pipeline.process import RULES_BACKEND, extract_record

    articles = load_articles(args.corpus or [DEFAULT_CORPUS], args.articles)
    if not articles:
        print("no articles found", file=sys.stderr)
        return 2
    extract_record(articles[0], None, model="rules", backend=RULES_BACKEND)  # load every model before the clock starts

    def run() -> list:
        records = []
        step = args.batch or len(articles)
        for first in range(0, len(articles), step):
            group = articles[first : first + step]
            parses = segment_module.segment_many([a.text for a in group], args.batch) if args.batch else [None] * len(group)
            records += [extract_record(a, None, model="rules", backend=RULES_BACKEND, seg=seg) for a, seg in zip(group, parses, strict=True)]
        return records

    profiler = cProfile.Profile() if args.profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    records = run()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    words = sum(len(a.text.split()) for a in articles)
    command = "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT) if Path(sys.argv[0]).is_relative_to(ROOT) else sys.argv[0]), *sys.argv[1:]])
    print(f"$ {command}")
    print(
        f"{len(articles)} articles, {words / len(articles):.0f} words on average: {1000 * cpu / len(articles):.0f} ms CPU per article "
        f"({1000 * cpu / words * 1000:.0f} ms per 1,000 words), wall {1000 * wall / len(articles):.0f} ms per article"
        + (" (under cProfile: inflated)" if profiler else "")
    )
    print(f"CPU ceiling on 2 cores, pipeline alone: {2 * len(articles) / cpu:.1f} articles/s")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())
    if args.records:
        args.records.mkdir(parents=True, exist_ok=True)
        for record in records:
            (args.records / f"{record.article.id}.json").write_text(json.dumps(comparable(record), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
