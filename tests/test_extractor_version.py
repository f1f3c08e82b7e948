"""The extractor version: computed from code and resources, carried by records, used by "up to date" and the cache.

A change of extractor is simulated the way it happens: a copy of the checkout with one rule
resource (or one line of extraction code) changed, which `pipeline.version.SOURCE_ROOT` then
points at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.version as version
from pipeline.run import RunConfig, run_batch
from pipeline.version import extractor_components, extractor_version
from tests.support import API_KEY, write_articles
from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]


def checkout_copy(target: Path) -> Path:
    """The files a commit ships (packages, pyproject), as a fresh install would have them: no caches."""
    for package in ("pipeline", "schemas", "flows"):
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def changed_extractor(tmp_path: Path) -> Path:
    """A copy of the checkout whose rules differ by one resource file."""
    root = checkout_copy(tmp_path / "version-b")
    resources = root / "pipeline" / "resources"
    resources.mkdir(exist_ok=True)
    (resources / "zz_test_lexicon.txt").write_text("one more cue word\n")
    return root


def version_in_subprocess(root: Path, cwd: Path) -> str:
    code = "from pipeline.version import extractor_version; print(extractor_version())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=120)
    return result.stdout.strip()


# --------------------------------------------------------------------------- computing it


def test_two_installs_of_the_same_commit_compute_the_same_version(tmp_path: Path) -> None:
    first = checkout_copy(tmp_path / "machine-a" / "news-records")
    second = checkout_copy(tmp_path / "machine-b" / "elsewhere" / "checkout")
    # The second install has bytecode, other modification times and sits at another absolute path.
    for path in (second / "pipeline").rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (second / "pipeline" / "__pycache__").mkdir(exist_ok=True)
    (second / "pipeline" / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"\x00bytecode")
    here = extractor_version()
    assert here.startswith("0.") and "+" in here and len(here.split("+")[1]) == 12
    assert version_in_subprocess(first, cwd=tmp_path) == version_in_subprocess(second, cwd=second) == here
    assert extractor_version(root=first) == extractor_version(root=second) == here


def test_any_change_to_what_shapes_a_record_changes_the_version(tmp_path: Path) -> None:
    base = extractor_version(root=checkout_copy(tmp_path / "base"))

    resource = changed_extractor(tmp_path)
    assert extractor_version(root=resource) != base, "a new lexicon or learned artifact is a new extractor"

    rule = checkout_copy(tmp_path / "rule")
    candidates = rule / "pipeline" / "candidates.py"
    candidates.write_text(candidates.read_text() + "\n# a rule changed\n")
    assert extractor_version(root=rule) != base, "a change to the extraction code is a new extractor"

    schema = checkout_copy(tmp_path / "schema")
    records = schema / "schemas" / "records.py"
    records.write_text(records.read_text() + "\n# the record contract changed\n")
    assert extractor_version(root=schema) != base

    bookkeeping = checkout_copy(tmp_path / "bookkeeping")
    for name in ("write.py", "review.py", "cli.py", "terminal.py"):
        path = bookkeeping / "pipeline" / name
        path.write_text(path.read_text() + "\n# not about what a record says\n")
    assert extractor_version(root=bookkeeping) == base, "writing files or showing a run does not shape a record"

    assert extractor_version("qwen2.5-coder-1.5b") != extractor_version("qwen2.5-coder-0.5b") != extractor_version()
    parts = extractor_components("qwen2.5-coder-1.5b")
    assert parts["embedded_model_sha256"] and len(parts["embedded_model_sha256"]) == 64
    assert parts["spacy"] and parts["spacy_model"] and parts["spacy_model"] != "not installed"
    assert {p.name for p in version.code_files()} >= {"process.py", "candidates.py", "extract.py", "topics.py", "records.py"}


# --------------------------------------------------------------------------- the plain engine


def _by_source(out: Path) -> dict[str, dict]:
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    return {r["article"]["source_file"]: r for r in records}


def test_plain_engine_re_extracts_records_of_an_older_extractor_or_keeps_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 3)
    a = extractor_version()
    first = run_batch(RunConfig(inp, out, rules_only=True))
    assert first["extractor_version"] == a and first["records_by_extractor"] == {a: 3}
    assert {r["provenance"]["extractor_version"] for r in _by_source(out).values()} == {a}
    assert {x["why"] for x in first["articles"]} == {"new: no record yet"}

    again = run_batch(RunConfig(inp, out, rules_only=True))
    assert again["records_cached"] == 3 and {x["why"] for x in again["articles"]} == {"up to date"}

    monkeypatch.setattr(version, "SOURCE_ROOT", changed_extractor(tmp_path))
    b = extractor_version()
    assert b != a

    # Keep: records of the older extractor stay, and the manifest says so and counts them.
    kept = run_batch(RunConfig(inp, out, rules_only=True, rerun="missing"))
    assert kept["records_written"] == 0 and kept["records_cached"] == 3
    assert kept["records_by_extractor"] == {a: 3} and kept["extractor_version"] == b
    assert kept["decisions"] == {"kept": 3}
    assert all(x["why"] == f"kept: made by extractor {a} (rerun=missing)" for x in kept["articles"])

    # The default: re-extract them, and say why.
    redone = run_batch(RunConfig(inp, out, rules_only=True))
    assert redone["records_written"] == 3 and redone["decisions"] == {"extractor changed": 3}
    assert all(x["why"] == f"extractor changed ({a} -> {b})" for x in redone["articles"])
    assert redone["records_by_extractor"] == {b: 3}
    assert {r["provenance"]["extractor_version"] for r in _by_source(out).values()} == {b}
    # Registry and tables follow the records.
    rows = [json.loads(line) for line in (out / "quotes.jsonl").read_text().splitlines()]
    assert {row["source_file"] for row in rows} <= set(names) and len({row["article_id"] for row in rows}) <= 3
    assert json.loads((out / "manifest.json").read_text())["records_by_extractor"] == {b: 3}


def test_the_terminal_summary_reports_versions_and_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.terminal import print_summary

    inp, out = tmp_path / "in", tmp_path / "out"
    write_articles(inp, 2)
    a = extractor_version()
    run_batch(RunConfig(inp, out, rules_only=True))
    monkeypatch.setattr(version, "SOURCE_ROOT", changed_extractor(tmp_path))
    print_summary(run_batch(RunConfig(inp, out, rules_only=True)))
    printed = capsys.readouterr().out
    assert f"2 re-extracted because the extractor changed ({a} -> {extractor_version()})" in printed
    assert f"records by extractor: {extractor_version()}: 2" in printed


def test_records_without_a_version_count_as_unversioned_and_are_re_extracted(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    write_articles(inp, 2)
    run_batch(RunConfig(inp, out, rules_only=True))
    path = next((out / "records").glob("*.json"))
    record = json.loads(path.read_text())
    del record["provenance"]["extractor_version"]  # a record written before records carried one
    path.write_text(json.dumps(record))
    kept = run_batch(RunConfig(inp, out, rules_only=True, rerun="missing"))
    assert kept["records_by_extractor"] == {"unversioned": 1, extractor_version(): 1}
    redone = run_batch(RunConfig(inp, out, rules_only=True))
    assert redone["decisions"] == {"extractor changed": 1, "up to date": 1}


# --------------------------------------------------------------------------- the Prefect flow


@pytest.mark.slow
def test_flow_cache_and_up_to_date_check_follow_the_extractor_version(prefect_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from flows import extract_flow
    from flows.artifacts import summary_markdown

    monkeypatch.setenv("NEWS_LLM_API_KEY", API_KEY)
    articles = tmp_path / "articles"
    write_articles(articles, 3)
    with FakeOpenAI() as fake:
        params = {"input_dir": str(articles), "base_url": fake.base_url, "model": "fake-version"}
        first = extract_flow.extract_articles(output_dir=str(tmp_path / "out"), **params)
        a = first["extractor_version"]
        assert first["records_written"] == 3 and fake.requests_count > 0
        calls = fake.requests_count
        cached = extract_flow.extract_articles(output_dir=str(tmp_path / "fresh-a"), **params)
        assert cached["records_cached"] == 3 and fake.requests_count == calls, "same extractor: the cache answers"

        monkeypatch.setattr(version, "SOURCE_ROOT", changed_extractor(tmp_path))
        # A new output folder after a code change: extracted again, not served from the old cache.
        fresh = extract_flow.extract_articles(output_dir=str(tmp_path / "fresh-b"), **params)
        b = fresh["extractor_version"]
        assert b != a and fresh["records_written"] == 3 and fake.requests_count > calls
        assert fresh["records_by_extractor"] == {b: 3}
        calls = fake.requests_count

        # The old folder, keep-older policy: kept and counted, no model call.
        kept = extract_flow.extract_articles(output_dir=str(tmp_path / "out"), rerun="missing", **params)
        assert kept["records_written"] == 0 and kept["records_by_extractor"] == {a: 3} and fake.requests_count == calls
        assert kept["decisions"] == {"kept": 3}

        # The old folder, default policy: re-extracted because the extractor changed (the new cache entry answers).
        redone = extract_flow.extract_articles(output_dir=str(tmp_path / "out"), **params)
        assert redone["decisions"] == {"extractor changed": 3} and redone["records_by_extractor"] == {b: 3}
        summary = summary_markdown(redone)
        assert "extractor changed: 3" in summary and f"`{b}`: 3" in summary and f"| Extractor | `{b}`" in summary
        assert f"extractor changed ({a} -> {b})" in summary, "the summary says why each article was extracted"
