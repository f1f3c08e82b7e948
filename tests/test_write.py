"""Writing and paths: confinement of run folders, safe file names, atomic files, locks, rebuilt tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pipeline.write as write
from pipeline.paths import ROOTS_ENV, PathNotAllowed, allowed_roots, confine
from pipeline.run import RunConfig, run_batch
from pipeline.write import (
    TABLES,
    article_lock,
    failure_path,
    output_lock,
    record_path,
    remove_stale_temp_files,
    update_tables,
    write_text_atomic,
)
from tests.support import audit_outputs, news_article, write_articles

# --- confinement of run folders -------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(ROOTS_ENV, str(allowed))
    monkeypatch.chdir(allowed)
    return allowed


def test_default_roots_are_cwd_and_temp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tempfile

    monkeypatch.delenv(ROOTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert allowed_roots() == [tmp_path.resolve(), *([] if Path(tempfile.gettempdir()).resolve() == tmp_path.resolve() else [Path(tempfile.gettempdir()).resolve()])]


def test_paths_inside_the_roots_are_resolved(roots: Path) -> None:
    assert confine("outputs") == roots / "outputs"
    assert confine("a/../b") == roots / "b"
    assert confine(roots / "x" / "y") == roots / "x" / "y"
    assert confine(".") == roots


@pytest.mark.parametrize("escape", ["..", "../..", "../../etc", "outputs/../../x", "/etc", "/", "/tmp/../etc/passwd"])
def test_escapes_are_refused_with_a_clear_error(roots: Path, escape: str) -> None:
    with pytest.raises(PathNotAllowed) as raised:
        confine(escape, what="output folder")
    message = str(raised.value)
    assert message.startswith(f"output folder {escape!r} resolves to")
    assert str(roots) in message and ROOTS_ENV in message


def test_symlink_out_of_the_roots_is_refused(roots: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (roots / "link").symlink_to(outside)
    with pytest.raises(PathNotAllowed):
        confine("link/records")


def test_bad_root_configuration_and_values(monkeypatch: pytest.MonkeyPatch, roots: Path) -> None:
    with pytest.raises(PathNotAllowed, match="empty"):
        confine("  ")
    with pytest.raises(PathNotAllowed, match="NUL"):
        confine("out\x00put")
    monkeypatch.setenv(ROOTS_ENV, "relative/root")
    with pytest.raises(PathNotAllowed, match="not an absolute path"):
        allowed_roots()
    monkeypatch.setenv(ROOTS_ENV, f"{roots}{os.pathsep}/srv/news")
    assert allowed_roots() == [roots, Path("/srv/news").resolve()]


def test_run_config_confines_both_folders(roots: Path) -> None:
    config = RunConfig(Path("in"), Path("out"), rules_only=True)
    assert (config.input_dir, config.output_dir) == (roots / "in", roots / "out")
    with pytest.raises(PathNotAllowed, match="input folder"):
        RunConfig(Path("../../etc"), Path("out"), rules_only=True)
    with pytest.raises(PathNotAllowed, match="output folder"):
        RunConfig(Path("in"), Path("/etc/news-records"), rules_only=True)
    with pytest.raises(ValueError, match="rerun"):
        RunConfig(Path("in"), Path("out"), rules_only=True, rerun="everything")  # type: ignore[arg-type]


# --- nothing from an article becomes a path -------------------------------------------


@pytest.mark.parametrize("source", ["../../etc/passwd", "/abs/path.txt", "..", ".hidden", "a/b.txt", "feed.jsonl#L3", "x" * 600, "ü/ñ.txt"])
def test_failure_file_names_stay_inside_failed(tmp_path: Path, source: str) -> None:
    path = failure_path(tmp_path, source)
    assert path.parent == tmp_path / "failed"
    assert not path.name.startswith(".") and "/" not in path.name and len(path.name) < 150
    assert path.resolve().is_relative_to((tmp_path / "failed").resolve())


def test_distinct_sources_get_distinct_failure_files(tmp_path: Path) -> None:
    names = {failure_path(tmp_path, s) for s in ("a/b.txt", "a_b.txt", "a b.txt", "a?b.txt")}
    assert len(names) == 4


def test_article_metadata_is_never_a_path(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    evil = {"id": "../../evil", "source_file": "../../evil.txt", "title": "../../../etc/passwd", "url": "file:///etc/passwd", "text": news_article(1).split("\n\n", 1)[1]}
    (inp / "feed.jsonl").write_text(json.dumps(evil) + "\n" + json.dumps({**evil, "text": ""}) + "\n")

    manifest = run_batch(RunConfig(inp, out, rules_only=True))

    [article] = [a for a in manifest["articles"] if a["status"] == "extracted"]
    assert article["source_file"] == "feed.jsonl#L1"
    assert record_path(out, article["article_id"]).exists() and article["article_id"].startswith("art_")
    [failure] = manifest["failures"]
    assert failure["source_file"] == "feed.jsonl#L2" and (out / failure["failure_record"]).parent == out / "failed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


# --- atomic files and stale temporary files ---------------------------------------------


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "records" / "x.json"
    write_text_atomic(target, "old\n")

    def broken_replace(src: object, dst: object, **dir_fds: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_text_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    records = tmp_path / "records"
    records.mkdir()
    dead = records / f".art_1.json.{child.pid}.deadbeef.tmp"
    alive = records / f".art_2.json.{os.getpid()}.cafebabe.tmp"  # a writer of this very process, still writing
    other = records / ".keep-me"
    for path in (dead, alive, other):
        path.write_text("partial")

    removed = remove_stale_temp_files(tmp_path)

    assert removed == [dead]
    assert alive.exists() and other.exists()
    old = time.time() - 7 * 3600
    os.utime(alive, (old, old))
    assert remove_stale_temp_files(tmp_path) == [alive], "a very old temp file is abandoned whoever wrote it"


# --- locks and tables ----------------------------------------------------------------


def test_article_lock_excludes_other_holders(tmp_path: Path) -> None:
    events: list[str] = []
    holding = threading.Event()

    def holder() -> None:
        with article_lock(tmp_path, "art_1") as waited:
            events.append(f"a:{waited}")
            holding.set()
            time.sleep(0.3)
            events.append("a:done")

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(5)
    with article_lock(tmp_path, "art_1") as waited:
        events.append(f"b:{waited}")
    thread.join()
    assert events == ["a:False", "a:done", "b:True"]
    with article_lock(tmp_path, "art_2") as waited, output_lock(tmp_path):
        assert waited is False
    assert len(list((tmp_path / ".locks").iterdir())) <= 3


def test_tables_are_rebuilt_not_appended(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 3)
    first = run_batch(RunConfig(inp, out, rules_only=True))
    tables = {name: (out / name).read_text() for name in TABLES}

    second = run_batch(RunConfig(inp, out, rules_only=True, rerun="all"))
    assert second["records_written"] == 3, 'rerun="all" re-extracts even with current records'
    assert update_tables(out) == first["tables"] == second["tables"]

    assert {name: (out / name).read_text() for name in tables} == tables
    audit = audit_outputs(out, names)
    assert audit.duplicate_rows == 0 and audit.broken == [] and audit.records == {n: 1 for n in names}
    assert len(list((out / "runs").glob("*.json"))) == 2
