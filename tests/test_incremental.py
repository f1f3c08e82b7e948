"""Incremental maintenance of the tables and the registry: the same bytes as a full rebuild, reading only what changed.

Two output folders get the same record changes step by step (new, re-extracted, removed and
invalid records, an older article arriving late, a canonical name changing): one is brought up
to date incrementally, the other rebuilt in full every time (`full=True`, the fallback); after
every step their tables and registry files must be byte-identical. Then the state is made stale
in the ways a crash or an operator can (a crash between writes, a table edited, the state
deleted or garbled) and the next update must converge to the full rebuild. The last test runs
the rules pipeline end to end and counts the records a run over existing records reads.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

import pipeline.write as write
from pipeline.registry import MERGES, ORGANISATIONS, REGISTRY_STATE, SPEAKERS, update_registry
from pipeline.write import RECORDS_DIR, STATE_DIR, TABLES, TABLES_STATE, record_path, update_tables, write_record
from schemas.records import ArticleRecord
from tests.test_registry import make_record

FILES = (*TABLES, ORGANISATIONS, SPEAKERS, MERGES)


def files(output_dir: Path) -> dict[str, bytes]:
    return {name: (output_dir / name).read_bytes() for name in FILES}


class Reads:
    """Counts the record files the incremental code reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        original = write._read_record_signed

        def counting(dir_fd: int, name: str):  # noqa: ANN202
            self.names.append(name)
            return original(dir_fd, name)

        monkeypatch.setattr(write, "_read_record_signed", counting)

    def take(self) -> list[str]:
        names, self.names = self.names, []
        return names


def update(output_dir: Path, *, full: bool = False) -> None:
    update_tables(output_dir, full=full)
    update_registry(output_dir, full=full)


def apply(folders: tuple[Path, Path], *, write: tuple[ArticleRecord, ...] = (), remove: tuple[str, ...] = (), garble: tuple[str, ...] = ()) -> None:
    for folder in folders:
        for record in write:
            write_record(folder, record)
        for article_id in remove:
            record_path(folder, article_id).unlink()
        for article_id in garble:
            record_path(folder, article_id).write_text('{"not": "a record"}\n')


def acme(article_id: str, name: str, published: date, speaker: str = "Jane Roe", role: str | None = "economist", org_type: str = "company") -> ArticleRecord:
    return make_record(
        article_id,
        [(name, [], org_type, "US"), ("Beta Bank", ["BB"], "company", "US")],
        [(f"Quote {article_id}.", speaker, "person", role, name), (f"Bank {article_id}.", "Beta Bank", "organisation", None, "Beta Bank")],
        published=published,
    )


STEPS: list[dict] = [
    # 1: a first run (no state yet: the incremental side builds it from every record)
    {"write": (acme("art_a", "Acme Group", date(2024, 1, 1)), acme("art_b", "Acme", date(2024, 2, 1), speaker="Dr. Jane Roe"), acme("art_c", "ACME Group Inc.", date(2024, 3, 1)))},
    # 2: a new article, one re-extracted with other organisations and speakers, one removed
    {
        "write": (
            acme("art_d", "Acme Group", date(2024, 4, 1), speaker="Roe Jane", role="chief economist"),
            make_record("art_b", [("Acme Robotics Group Corp", [], "company", "US")], [("Changed.", "John Doe", "person", "analyst", "Acme Robotics Group Corp")], published=date(2024, 2, 1)),
        ),
        "remove": ("art_c",),
    },
    # 3: an older article arriving late; a record that no longer validates; a name that becomes the most used
    {
        "write": tuple(acme(f"art_0{i}", "Acme Robotics Group Corp", date(2023, 1, i + 1), speaker="John Doe", role="analyst") for i in range(3)),
        "garble": ("art_d",),
    },
    # 4: the removed article comes back; the garbled one is re-extracted; a person's surname read as an organisation
    {
        "write": (
            acme("art_c", "ACME Group Inc.", date(2024, 3, 1)),
            acme("art_d", "Acme Group", date(2024, 4, 1), speaker="Roe Jane", role="chief economist"),
            make_record("art_e", [("Doe", [], "other", "US")], [("Surname.", "John Doe", "person", None, None)], published=date(2024, 5, 1)),
        ),
    },
    # 5: nothing changed
    {},
]


def test_incremental_updates_give_the_bytes_of_a_full_rebuild_and_read_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inc, full = tmp_path / "incremental", tmp_path / "full"
    reads = Reads(monkeypatch)
    expected_reads = [3, 2, 4, 3, 0]
    for number, (step, expected) in enumerate(zip(STEPS, expected_reads, strict=True), 1):
        apply((inc, full), **step)
        reads.take()
        update(inc)
        read = reads.take()
        # update_tables and update_registry called on their own each read the changed records once
        assert len(read) == 2 * expected, f"step {number}: read {read}"
        update(full, full=True)
        assert files(inc) == files(full), f"step {number}: incremental and full rebuild differ"
    rows = (inc / ORGANISATIONS).read_text()
    assert "Acme Robotics Group Corp" in rows and "art_01" in rows
    assert (inc.joinpath(*STATE_DIR) / TABLES_STATE).is_file() and (inc.joinpath(*STATE_DIR) / REGISTRY_STATE).is_file()


def _folder_after_steps(tmp_path: Path, name: str, steps: list[dict]) -> Path:
    out = tmp_path / name
    for step in steps:
        apply((out,), **step)
        update(out)
    return out


@pytest.mark.parametrize(
    "spoil",
    ["no state", "garbled state", "table edited", "registry file replaced", "crash before the tables' state", "crash between registry files"],
)
def test_a_stale_or_missing_state_falls_back_to_a_full_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: str) -> None:
    out = _folder_after_steps(tmp_path, "out", STEPS[:2])
    apply((out,), **STEPS[2])
    state_dir = out.joinpath(*STATE_DIR)
    if spoil == "no state":
        shutil.rmtree(state_dir)
    elif spoil == "garbled state":
        (state_dir / TABLES_STATE).write_text("{")
        (state_dir / REGISTRY_STATE).write_text('{"version": 1, "orgs": 3}')
    elif spoil == "table edited":
        (out / "quotes.jsonl").write_text((out / "quotes.jsonl").read_text() + '{"article_id": "art_zz"}\n')
    elif spoil == "registry file replaced":
        (out / ORGANISATIONS).write_text("")
    elif spoil == "crash before the tables' state":  # tables written, the process dies before their state is
        with monkeypatch.context() as patch:
            patch.setattr(write, "save_state", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
            with pytest.raises(OSError):
                update_tables(out)
    elif spoil == "crash between registry files":  # merges.jsonl written, organisations.jsonl not
        import pipeline.registry as registry

        real = registry.write_text_atomic

        def dies_on_organisations(path: Path, content: str, **kwargs) -> None:  # noqa: ANN003
            if path.name == ORGANISATIONS:
                raise OSError("killed")
            real(path, content, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(registry, "write_text_atomic", dies_on_organisations)
            with pytest.raises(OSError):
                update_registry(out)
    update(out)
    reference = tmp_path / "reference"
    shutil.copytree(out, reference)
    update(reference, full=True)
    assert files(out) == files(reference), "the update after a spoilt state is a full rebuild"
    # ... and the state it leaves behind is good for the next incremental update
    apply((out, reference), **STEPS[3])
    update(out)
    update(reference, full=True)
    assert files(out) == files(reference)


def test_a_run_over_existing_records_reads_only_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.run import RunConfig, run_batch
    from tests.support import audit_outputs, write_articles

    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 4)
    run_batch(RunConfig(inp, out, rules_only=True))
    reads = Reads(monkeypatch)
    # A new article, an edited one (its old record is superseded), an unreadable input.
    write_articles(inp, 1, start=10)
    edited = inp / names[0]
    edited.write_text(edited.read_text() + "\nA late correction was added.\n")
    (inp / "bad.pdf").write_bytes(b"%PDF")
    manifest = run_batch(RunConfig(inp, out, rules_only=True))
    assert manifest["records_written"] == 2 and len(manifest["failures"]) == 1
    assert sorted(reads.take()) == sorted(f"{a['article_id']}.json" for a in manifest["articles"] if a["status"] == "extracted"), "each written record read once, no other"
    assert len(list((out / "superseded").glob("*.json"))) == 1
    audit = audit_outputs(out, [*names, "a_010.txt"])
    assert audit.broken == [] and audit.duplicate_rows == 0 and set(audit.records.values()) == {1}
    incremental = files(out)
    reference = tmp_path / "reference"
    shutil.copytree(out, reference)
    update(reference, full=True)
    assert files(reference) == incremental
    assert manifest["registry"]["records"] == len(list((out / RECORDS_DIR).glob("*.json"))) == 5
    # The review page took its registry links from the registry in memory: the same page as from the files.
    from pipeline.review import REVIEW_PAGE, render_review_page

    page = (out / REVIEW_PAGE).read_text(encoding="utf-8")
    assert page == render_review_page(out, manifest) and "org_" in page and "spk_" in page
