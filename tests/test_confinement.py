"""Nothing outside the input folder is read and nothing outside the output folder is written.

Links (absolute and relative targets, chains, linked folders, a link swapped in between listing and
reading), FIFOs, sockets and device files in the input folder, and links where the run's own entries
belong in the output folder: each entry gets a reason, the rest of the batch completes, nothing blocks.
An audit hook records every file the run opens, so "never opened" is checked, not assumed.
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline.ingest as ingest
from pipeline.paths import FOLLOW_LINKS_ENV, ROOTS_ENV
from pipeline.run import RunConfig, run_batch
from tests.support import news_article, write_articles

SECRET = "TOPSECRET-canary-7f3a"  # the content of every file outside the input folder
SECRET_NAME = "outside-canary"  # every outside file's name starts with this


# --------------------------------------------------------------------------- helpers

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every path (or dir-relative name) passed to open() while the test runs."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def outside_tree(base: Path) -> Path:
    """A folder outside the input and output folders, full of canary files."""
    outside = base / "elsewhere"
    (outside / "secrets").mkdir(parents=True)
    for name in (f"{SECRET_NAME}.txt", f"secrets/{SECRET_NAME}-2.txt"):
        (outside / name).write_text(f"title: {SECRET}\n\nThe {SECRET} file said nothing, said Jane Doe, the keeper.\n")
    return outside


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def run_in_thread(config: RunConfig, timeout: float = 120) -> dict:
    """run_batch in a thread: a run that blocks (e.g. on a FIFO) fails the test instead of hanging it."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(manifest=run_batch(config)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the run blocked"
    return result["manifest"]


def all_output_text(out: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and not p.is_symlink())


def hostile_input(base: Path) -> tuple[Path, Path]:
    inp = base / "in"
    write_articles(inp, 2)  # a_000.txt, a_001.txt
    outside = outside_tree(base)
    (inp / "abs_link.txt").symlink_to(outside / f"{SECRET_NAME}.txt")  # absolute target
    (inp / "rel_link.txt").symlink_to(Path("..") / "elsewhere" / f"{SECRET_NAME}.txt")  # relative target
    (inp / "chain_3.txt").symlink_to(outside / f"{SECRET_NAME}.txt")
    (inp / "chain_2.txt").symlink_to("chain_3.txt")
    (inp / "chain_1.txt").symlink_to("chain_2.txt")  # a chain of links that ends outside
    (inp / "linked_dir").symlink_to(outside / "secrets", target_is_directory=True)  # a linked folder
    (inp / "sub").mkdir()
    (inp / "sub" / "up_link.txt").symlink_to(Path("..") / ".." / "elsewhere" / f"{SECRET_NAME}.txt")
    (inp / "inside_link.txt").symlink_to("a_000.txt")  # a link that stays inside
    (inp / "dangling.txt").symlink_to("no-such-file.txt")
    (inp / "loop_a.txt").symlink_to("loop_b.txt")
    (inp / "loop_b.txt").symlink_to("loop_a.txt")
    os.mkfifo(inp / "pipe.txt")  # nobody writes to it: opening it for reading would block
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(inp / "sock.txt"))
    try:
        os.mknod(inp / "device.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        if os.environ.get("CI"):
            raise
    return inp, outside


EXPECTED_REASONS = {
    "abs_link.txt": "skipped: symbolic link leading outside the input folder",
    "rel_link.txt": "skipped: symbolic link leading outside the input folder",
    "chain_1.txt": "skipped: symbolic link leading outside the input folder",
    "chain_2.txt": "skipped: symbolic link leading outside the input folder",
    "chain_3.txt": "skipped: symbolic link leading outside the input folder",
    "linked_dir": "skipped: symbolic link leading outside the input folder",
    "sub/up_link.txt": "skipped: symbolic link leading outside the input folder",
    "inside_link.txt": "skipped: symbolic link to a_000.txt inside the input folder",
    "dangling.txt": "skipped: broken symbolic link",
    "loop_a.txt": "skipped: broken symbolic link",
    "loop_b.txt": "skipped: broken symbolic link",
    "pipe.txt": "skipped: a named pipe (FIFO)",
    "sock.txt": "skipped: a socket",
    "device.txt": "skipped: a device file",
}


# --------------------------------------------------------------------------- input folder


def test_links_and_special_files_in_the_input_are_skipped_with_reasons(tmp_path: Path, opened: list[str]) -> None:
    inp, outside = hostile_input(tmp_path)
    before = snapshot(outside)
    out = tmp_path / "out"
    opened.clear()

    manifest = run_in_thread(RunConfig(inp, out, rules_only=True))

    reasons = {f["source_file"]: f["reason"] for f in manifest["failures"]}
    expected = {k: v for k, v in EXPECTED_REASONS.items() if (inp / k).exists() or (inp / k).is_symlink()}
    assert set(reasons) == set(expected)
    for name, start in expected.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    assert all(f["stage"] == "ingest" and f["failure_record"] for f in manifest["failures"])
    assert "--follow-links" in reasons["abs_link.txt"]
    # The rest of the batch ran.
    assert manifest["records_written"] == 2 and {a["source_file"] for a in manifest["articles"] if a["status"] == "extracted"} == {"a_000.txt", "a_001.txt"}
    # Nothing outside was opened, read or changed, and nothing of it reached any output.
    assert not [p for p in opened if SECRET_NAME in p], "a file outside the input folder was opened"
    assert SECRET not in all_output_text(out)
    assert snapshot(outside) == before
    # The review page lists every skipped entry among the failures.
    page = (out / "review.html").read_text()
    failures = page[page.index('id="failures"') :]
    for name in expected:
        assert name in failures, name


def test_a_link_or_fifo_swapped_in_after_listing_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[str]) -> None:
    inp = tmp_path / "in"
    write_articles(inp, 4)
    (inp / "sub").mkdir()
    (inp / "sub" / "b.txt").write_text(news_article(7))
    outside = outside_tree(tmp_path)
    (outside / "secrets" / "b.txt").write_text(f"title: {SECRET}\n\n{SECRET} said nothing, said Jane Doe.\n")
    real_list = ingest._list_files

    def list_then_swap(folder: Path, **options: object):  # noqa: ANN202
        listed = real_list(folder, **options)
        (inp / "a_001.txt").unlink()
        (inp / "a_001.txt").symlink_to(outside / f"{SECRET_NAME}.txt")  # a file becomes a link
        (inp / "sub").rename(tmp_path / "old-sub")
        (inp / "sub").symlink_to(outside / "secrets", target_is_directory=True)  # its folder becomes a link
        (inp / "a_002.txt").unlink()
        os.mkfifo(inp / "a_002.txt")  # a file becomes a FIFO
        return listed

    monkeypatch.setattr(ingest, "_list_files", list_then_swap)
    opened.clear()
    manifest = run_in_thread(RunConfig(inp, tmp_path / "out", rules_only=True))

    reasons = {f["source_file"]: f["reason"] for f in manifest["failures"]}
    assert set(reasons) == {"a_001.txt", "sub/b.txt", "a_002.txt"}
    assert all(r.startswith("skipped: ") for r in reasons.values()), reasons
    assert "symbolic link" in reasons["a_001.txt"] and "symbolic link" in reasons["sub/b.txt"]
    assert manifest["records_written"] == 2
    assert SECRET not in all_output_text(tmp_path / "out")
    assert not [p for p in opened if SECRET_NAME in p or p.endswith("secrets/b.txt")]


def test_following_links_is_the_operators_explicit_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp = tmp_path / "in"
    write_articles(inp, 1)
    outside = outside_tree(tmp_path)
    (inp / "linked.txt").symlink_to(outside / f"{SECRET_NAME}.txt")
    (inp / "linked_dir").symlink_to(outside / "secrets", target_is_directory=True)
    (inp / "linked_dir_again").symlink_to(outside / "secrets", target_is_directory=True)
    (inp / "self").symlink_to(".", target_is_directory=True)  # a loop when links are followed

    monkeypatch.delenv(FOLLOW_LINKS_ENV, raising=False)
    assert RunConfig(inp, tmp_path / "o1", rules_only=True).follow_links is False
    monkeypatch.setenv(FOLLOW_LINKS_ENV, "1")
    config = RunConfig(inp, tmp_path / "o2", rules_only=True)
    assert config.follow_links is True
    manifest = run_in_thread(config)
    extracted = {a["source_file"] for a in manifest["articles"] if a["status"] == "extracted"}
    assert {"a_000.txt", "linked.txt"} <= extracted
    reasons = {f["source_file"]: f["reason"] for f in manifest["failures"]}
    assert reasons["self"].startswith("skipped: symbolic link back to a folder already read")
    assert len([s for s in extracted | set(reasons) if "linked_dir" in s]) == 2  # read once, its twin a duplicate


# --------------------------------------------------------------------------- output folder


def test_links_in_the_output_folder_are_never_written_through(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    names = write_articles(inp, 3)
    (inp / "bad.pdf").write_bytes(b"%PDF")  # so failed/ is written too
    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("records", "failed", "runs", ".locks"):
        (out / name).symlink_to(outside / "secrets", target_is_directory=True)
    for name in ("review.html", "quotes.jsonl", "organisations.jsonl", "manifest.json"):
        (out / name).symlink_to(outside / f"{SECRET_NAME}.txt")

    manifest = run_in_thread(RunConfig(inp, out, rules_only=True))

    assert snapshot(outside) == before, "a file outside the output folder was written"
    assert manifest["records_written"] == 3 and [f["source_file"] for f in manifest["failures"]] == ["bad.pdf"]
    moved = {m["entry"]: m for m in manifest["output_links"]}
    assert set(moved) == {"records", "failed", "runs", ".locks", "review.html", "quotes.jsonl", "organisations.jsonl", "manifest.json"}
    for entry, item in moved.items():
        assert "symbolic link leading outside the output folder" in item["reason"]
        assert (out / item["moved_to"]).is_symlink(), "the link itself is kept, renamed"
        assert not (out / entry).is_symlink()
    assert len(list((out / "records").glob("*.json"))) == 3 and (out / "records").is_dir()
    assert SECRET not in (out / "review.html").read_text() and SECRET not in (out / "organisations.jsonl").read_text()
    assert json.loads((out / "manifest.json").read_text())["run_id"] == manifest["run_id"]
    assert {name for name in names} == {a["source_file"] for a in manifest["articles"] if a["status"] == "extracted"}


def test_a_link_put_in_a_run_folder_is_not_written_through(tmp_path: Path) -> None:
    """Links below the run's own folders (a record file, a lock file) are replaced or refused, never followed."""
    from pipeline.write import article_lock, load_record, write_text_atomic

    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    target = out / "records" / "art_x.json"
    target.symlink_to(outside / f"{SECRET_NAME}.txt")
    assert load_record(target) is None  # not read through the link
    write_text_atomic(target, "{}\n", root=out)
    assert not target.is_symlink() and target.read_text() == "{}\n"
    (out / ".locks").mkdir()
    for stripe in range(256):
        (out / ".locks" / f"article-{stripe:03d}.lock").symlink_to(outside / f"{SECRET_NAME}-lock-{stripe}")
    with article_lock(out, "art_x"):
        pass
    (out / "sub").symlink_to(outside / "secrets", target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        write_text_atomic(out / "sub" / "x.json", "{}", root=out)
    assert snapshot(outside) == before and not list(outside.glob(f"{SECRET_NAME}-lock-*"))


# --------------------------------------------------------------------------- the flow, as the UI starts it


def test_the_flow_offers_no_parameter_to_follow_links() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.extract_flow import extract_articles

    props = parameter_schema(extract_articles.fn).model_dump_for_openapi()["properties"]
    assert not [name for name in props if "link" in name or "follow" in name]


@pytest.mark.slow
def test_a_flow_run_with_ui_style_parameters_is_confined(prefect_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[str]) -> None:  # noqa: ANN001
    from flows.extract_flow import extract_articles

    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    monkeypatch.delenv(FOLLOW_LINKS_ENV, raising=False)
    inp, outside = hostile_input(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "records").symlink_to(outside / "secrets", target_is_directory=True)
    before = snapshot(outside)
    # As the UI's form sends them: strings, nothing else.
    parameters = {"input_dir": str(inp), "output_dir": str(out), "rules_only": True, "rerun": "all", "concurrency": 2}
    opened.clear()

    result: dict = {}
    context = contextvars.copy_context()  # the Prefect settings of `prefect_settings` live in context variables
    thread = threading.Thread(target=lambda: context.run(lambda: result.update(manifest=extract_articles(**parameters))), daemon=True)
    thread.start()
    thread.join(300)
    assert not thread.is_alive(), "the flow run blocked"
    manifest = result["manifest"]

    reasons = {f["source_file"]: f["reason"] for f in manifest["failures"]}
    for name, start in EXPECTED_REASONS.items():
        if (inp / name).exists() or (inp / name).is_symlink():
            assert reasons[name].startswith(start), (name, reasons.get(name))
    assert manifest["records_written"] == 2
    assert [m["entry"] for m in manifest["output_links"]] == ["records"]
    assert not [p for p in opened if SECRET_NAME in p], "a file outside the input folder was opened"
    assert snapshot(outside) == before
    assert SECRET not in all_output_text(out)
    with pytest.raises(Exception):  # noqa: B017 - the flow validates its parameters: there is no such option
        extract_articles(**parameters, follow_links=True)
