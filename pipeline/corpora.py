"""Labelled corpora in the gold format: convert PolNeAR and CoNLL++ splits for scoring.

The corpora live beside the checkout in `../shared/corpora` (third-party texts: they are read from
there and never copied into the repository); their converters to the eval-dev gold format are the
scripts in `../shared/corpora/tools/`, which this module runs unchanged as subprocesses:

    prepare("polnear-dev", out)     # out/articles/<name>.txt, out/gold/<name>.json, out/conversion.json
    prepare("conll-dev", out)

`polnear_to_gold.py` aborts a whole split on the first annotation file whose offsets do not match
its text ("offset mismatch <file>.ann T<n>"). `convert_polnear` therefore runs it on a mirror of the
split made of symbolic links and drops each rejected annotation file from the mirror, one at a time,
until the conversion succeeds; the dropped files are listed in `conversion.json` and in the result.
An article whose only annotation file was dropped is left out (the converter warns); with another
annotator's file it is converted from that one.

`sample(names)` is the fixed every-n-th sample the quality gate scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA_ENV = "NEWS_RECORDS_CORPORA"
MAX_DROPPED = 20  # more rejected annotation files than this means something else is wrong
_MISMATCH = re.compile(r"offset mismatch (\S+\.ann) (T\d+)")


def corpora_dir() -> Path:
    """`NEWS_RECORDS_CORPORA`, or `../shared/corpora` beside the checkout."""
    return Path(os.environ.get(CORPORA_ENV) or REPO.parent / "shared" / "corpora")


def default_cache() -> Path:
    """Where converted corpora are kept: `<news-records cache>/corpora` (the model cache's parent)."""
    root = os.environ.get("NEWS_RECORDS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "news-records"
    return Path(root) / "corpora"


@dataclass(frozen=True)
class Split:
    name: str
    kind: str  # "polnear" or "conll"
    source: str  # relative to the corpora folder


SPLITS: dict[str, Split] = {
    s.name: s
    for s in (
        Split("polnear-dev", "polnear", "polnear/dev"),
        Split("polnear-train", "polnear", "polnear/train"),
        Split("conll-dev", "conll", "conllpp/dev.txt"),
        Split("conll-train", "conll", "conllpp/train.txt"),
    )
}
TOOLS = {"polnear": "polnear_to_gold.py", "conll": "conll_to_gold.py"}


@dataclass
class Conversion:
    """What one conversion produced; written to `<out>/conversion.json`."""

    split: str
    source: str
    tool: str
    tool_sha256: str
    documents: int
    dropped: list[str] = field(default_factory=list)  # "<file>.ann T<n>": annotation files the converter rejected
    out: str = ""  # the folder holding articles/ and gold/


class ConversionError(RuntimeError):
    """A converter failed for a reason other than a rejected annotation file."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_tool(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900)


def _clear(out: Path) -> None:
    for sub, pattern in (("articles", "*.txt"), ("gold", "*.json")):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob(pattern):
            old.unlink()


def convert_polnear(split_dir: Path, out: Path, *, tools: Path, metadata: Path | None = None) -> list[str]:
    """Run polnear_to_gold.py on `split_dir` into `out`; returns the rejected annotation files it dropped."""
    tool = tools / TOOLS["polnear"]
    dropped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="polnear-mirror-") as tmp:
        mirror = Path(tmp)
        (mirror / "text").symlink_to((split_dir / "text").resolve(), target_is_directory=True)
        (mirror / "attributions").mkdir()
        for ann in sorted((split_dir / "attributions").glob("*.ann")):
            (mirror / "attributions" / ann.name).symlink_to(ann.resolve())
        extra = ["--metadata", str(metadata)] if metadata is not None and metadata.exists() else []
        while True:
            result = _run_tool([str(tool), str(mirror), "--out", str(out), *extra])
            if result.returncode == 0:
                return dropped
            rejected = _MISMATCH.search(result.stderr + result.stdout)
            if rejected is None or len(dropped) >= MAX_DROPPED:
                raise ConversionError(f"{tool.name} failed on {split_dir}: {(result.stderr or result.stdout)[-2000:]}")
            (mirror / "attributions" / rejected[1]).unlink()
            dropped.append(f"{rejected[1]} {rejected[2]}")


def convert_conll(conll_file: Path, out: Path, *, tools: Path) -> None:
    """Run conll_to_gold.py on one CoNLL++ file into `out` (prose documents only, as the tool decides)."""
    _clear(out)  # the tool adds files but never removes old ones
    result = _run_tool([str(tools / TOOLS["conll"]), str(conll_file), str(out)])
    if result.returncode != 0:
        raise ConversionError(f"{TOOLS['conll']} failed on {conll_file}: {(result.stderr or result.stdout)[-2000:]}")


def prepare(name: str, out: Path, *, corpora: Path | None = None, force: bool = False) -> Conversion:
    """Convert the split `name` (a key of SPLITS) into `out`, unless `out` already holds this conversion."""
    split = SPLITS[name]
    corpora = corpora or corpora_dir()
    source, tools = corpora / split.source, corpora / "tools"
    tool = tools / TOOLS[split.kind]
    if not source.exists() or not tool.exists():
        raise FileNotFoundError(f"{source} or {tool} is missing: the corpora belong in {corpora_dir()} (see {CORPORA_ENV})")
    out = Path(out)
    stamp = out / "conversion.json"
    if not force and stamp.exists():
        done = Conversion(**json.loads(stamp.read_text(encoding="utf-8")))
        if done.tool_sha256 == _sha256(tool) and done.source == str(source) and done.documents == len(list((out / "gold").glob("*.json"))):
            return done
    dropped: list[str] = []
    if split.kind == "polnear":
        dropped = convert_polnear(source, out, tools=tools, metadata=corpora / "polnear" / "metadata.tsv")
    else:
        convert_conll(source, out, tools=tools)
    conversion = Conversion(name, str(source), tool.name, _sha256(tool), len(list((out / "gold").glob("*.json"))), dropped, str(out))
    stamp.write_text(json.dumps(asdict(conversion), indent=1) + "\n", encoding="utf-8")
    return conversion


def sample(names: list[str], every: int) -> list[str]:
    """A fixed sample: every `every`-th name in sorted order, starting with the first."""
    return sorted(names)[::every]
