"""The cross-article registries: one id per organisation and per speaker, kept across runs.

Unit tests build records by hand (no spaCy, synthetic text); the end-to-end
test runs the rules-only pipeline on the dev set twice, then on one new
synthetic article that names an organisation of the dev set by another form.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.registry import MERGES, ORGANISATIONS, SPEAKERS, Registry, RegistryStats, contextual_names, name_key, person_key, update_registry
from pipeline.write import iter_records, write_record
from schemas.records import ArticleMeta, ArticleRecord, Organisation, Provenance, Quote, Span, Speaker, organisation_id
from schemas.tables import MergeRow, OrganisationRow, SpeakerRow
from tests.support.paths import EVAL_DEV, require_eval_dev  # noqa: E402

DEV_ARTICLES = EVAL_DEV / "articles"
DEV_GOLD = EVAL_DEV / "gold"


# --------------------------------------------------------------------------- helpers


def make_record(
    article_id: str,
    orgs: list[tuple[str, list[str], str, str | None]],
    quotes: list[tuple[str, str, str, str | None, str | None]] = (),
    published: date | None = date(2024, 1, 1),
) -> ArticleRecord:
    """A valid record: one sentence per organisation name/alias, one per quote (text, speaker, kind, role, org name)."""
    parts: list[str] = []
    mentions: dict[str, list[Span]] = {}
    for name, aliases, _, _ in orgs:
        for form in (name, *aliases):
            start = sum(len(p) + 1 for p in parts)
            parts.append(f"{form} was named here.")
            mentions.setdefault(name, []).append(Span(start=start, end=start + len(form)))
    quote_models = []
    for text, speaker, kind, role, org_name in quotes:
        start = sum(len(p) + 1 for p in parts) + 1
        parts.append(f'"{text}" said {speaker}.')
        quote_models.append(
            Quote(
                text=text, type="direct", span=Span(start=start, end=start + len(text)),
                speaker=Speaker(name=speaker, kind=kind, role=role, organisation_id=organisation_id(org_name) if org_name else None),
            )
        )  # fmt: skip
    body = " ".join(parts) or "Nothing."
    return ArticleRecord(
        article=ArticleMeta(id=article_id, source_file=f"{article_id}.txt", text=body, published=published),
        quotes=quote_models,
        organisations=[
            Organisation(id=organisation_id(name), name=name, aliases=aliases, type=org_type, country=country, mentions=mentions[name])
            for name, aliases, org_type, country in orgs
        ],
        provenance=Provenance(model="none", backend="rules", prompt_version="test", extracted_at=datetime(2024, 1, 1, tzinfo=UTC), seconds=0.0),
    )


def write_all(output_dir: Path, *records: ArticleRecord) -> None:
    for record in records:
        write_record(output_dir, record)


def org_rows(output_dir: Path) -> list[OrganisationRow]:
    return [OrganisationRow.model_validate_json(line) for line in (output_dir / ORGANISATIONS).read_text().splitlines()]


def speaker_rows(output_dir: Path) -> list[SpeakerRow]:
    return [SpeakerRow.model_validate_json(line) for line in (output_dir / SPEAKERS).read_text().splitlines()]


def merge_rows(output_dir: Path) -> list[MergeRow]:
    return [MergeRow.model_validate_json(line) for line in (output_dir / MERGES).read_text().splitlines()]


def row_named(rows: list[OrganisationRow], name: str) -> OrganisationRow:
    hits = [r for r in rows if name in (r.name, *r.aliases)]
    assert len(hits) == 1, f"{name!r} is in {len(hits)} registry rows: {[(r.id, r.name, r.aliases) for r in hits]}"
    return hits[0]


def registry_files(output_dir: Path) -> dict[str, bytes]:
    return {name: (output_dir / name).read_bytes() for name in (ORGANISATIONS, SPEAKERS, MERGES)}


# --------------------------------------------------------------------------- matching rules


def test_case_punctuation_and_legal_suffixes_are_one_organisation(tmp_path: Path) -> None:
    write_all(
        tmp_path,
        make_record("art_a", [("TCL Technology Group", ["TCL"], "company", "CN")], published=date(2024, 2, 6)),
        make_record("art_b", [("TCL Technology Group Corp.", [], "company", "CN")], published=date(2024, 3, 1)),
        make_record("art_c", [("tcl technology group co., ltd", [], "company", "CN")], published=date(2024, 4, 1)),
        make_record("art_d", [("TCL", [], "other", "CN")], published=date(2024, 5, 1)),
    )
    update_registry(tmp_path)
    rows = org_rows(tmp_path)
    assert len(rows) == 1, [(r.name, r.aliases) for r in rows]
    tcl = rows[0]
    assert tcl.id == organisation_id("TCL Technology Group"), "the first-seen name's id"
    assert tcl.article_ids == ["art_a", "art_b", "art_c", "art_d"]
    assert set(tcl.aliases) == {"TCL", "TCL Technology Group Corp.", "tcl technology group co., ltd"}
    assert tcl.type == "company" and tcl.country == "CN"
    rules = {m.alias: m.rule for m in merge_rows(tmp_path) if m.entity == "organisation"}
    assert rules == {
        "TCL Technology Group": "new",
        "TCL": "article_alias",
        "TCL Technology Group Corp.": "legal_suffix",
        "tcl technology group co., ltd": "legal_suffix",
    }


def test_a_short_form_joins_the_company_it_begins() -> None:
    registry = Registry()
    registry.update(
        [
            make_record("art_a", [("Northwind Logistics Holdings Ltd", [], "company", "GB")], published=date(2024, 1, 1)),
            make_record("art_b", [("Northwind", [], "other", "GB")], published=date(2024, 1, 2)),
            # Not a company: "Harbour" alone is not a short form of a newspaper's name.
            make_record("art_c", [("Harbour Daily", [], "media", "GB")], published=date(2024, 1, 3)),
            make_record("art_d", [("Harbour", [], "other", "GB")], published=date(2024, 1, 4)),
        ]
    )
    rows = registry.organisation_rows()
    assert row_named(rows, "Northwind").id == row_named(rows, "Northwind Logistics Holdings Ltd").id
    assert row_named(rows, "Harbour").id != row_named(rows, "Harbour Daily").id
    assert {m.alias: m.rule for m in registry.merges}["Northwind"] == "short_form"


def test_an_ambiguous_short_form_is_not_merged_and_says_why() -> None:
    registry = Registry()
    registry.update(
        [
            make_record("art_a", [("Kestrel Technology Group", [], "company", "CN"), ("Kestrel Electronics Holdings Ltd", [], "company", "HK")]),
            make_record("art_b", [("Kestrel", [], "company", "CN")], published=date(2024, 6, 1)),
        ]
    )
    rows = registry.organisation_rows()
    assert len(rows) == 3
    new = next(m for m in registry.merges if m.alias == "Kestrel")
    assert new.rule == "new" and "not merged" in new.reason and "short_form" in new.reason


def test_an_acronym_introduced_in_one_article_matches_it_alone_in_another() -> None:
    registry = Registry()
    registry.update(
        [
            make_record("art_a", [("Ministry of Industry and Information Technology", ["MIIT"], "government", "CN")]),
            make_record("art_b", [("MIIT", [], "other", "CN")], published=date(2024, 2, 1)),
            make_record("art_c", [("British Broadcasting Corporation", [], "media", "GB")]),
            make_record("art_d", [("BBC", [], "media", "GB")], published=date(2024, 2, 1)),
        ]
    )
    rows = registry.organisation_rows()
    miit = row_named(rows, "MIIT")
    assert miit.name == "Ministry of Industry and Information Technology" and miit.article_ids == ["art_a", "art_b"]
    assert miit.type == "government", "the informative type wins over 'other' on a tie"
    assert row_named(rows, "BBC").id == row_named(rows, "British Broadcasting Corporation").id
    rules = {(m.alias, m.article_id): m.rule for m in registry.merges}
    assert rules[("MIIT", "art_a")] == "article_alias"
    assert rules[("BBC", "art_d")] == "initials"


def test_possessive_and_comma_forms_of_a_sub_unit_are_one_organisation() -> None:
    registry = Registry()
    registry.update(
        [
            make_record(
                "art_a",
                [
                    ("Institute of Industrial Economics, Nankai University", ["Nankai University's Institute of Industrial Economics"], "research_institute", "CN"),
                    ("Nankai University", [], "university", "CN"),
                ],
            ),
            make_record("art_b", [("Institute of Industrial Economics, Chinese Academy of Social Sciences", ["Institute of Industrial Economics"], "research_institute", "CN")]),
            make_record("art_c", [("Nankai University Institute of Industrial Economics", [], "research_institute", "CN")], published=date(2024, 3, 1)),
            make_record("art_d", [("Institute of Industrial Economics, Nankai University", [], "research_institute", "CN")], published=date(2024, 4, 1)),
            # A bare sub-unit name says nothing about its parent: not matched across articles.
            make_record("art_e", [("Institute of Industrial Economics", [], "research_institute", "CN")], published=date(2024, 5, 1)),
        ]
    )
    rows = registry.organisation_rows()
    nankai_unit = row_named(rows, "Institute of Industrial Economics, Nankai University")
    assert nankai_unit.article_ids == ["art_a", "art_c", "art_d"]
    assert "Nankai University Institute of Industrial Economics" in nankai_unit.aliases
    assert row_named(rows, "Nankai University").id != nankai_unit.id
    cass = row_named(rows, "Institute of Industrial Economics, Chinese Academy of Social Sciences")
    assert cass.article_ids == ["art_b"]
    assert {m.alias: m.rule for m in registry.merges if m.article_id == "art_c"} == {"Nankai University Institute of Industrial Economics": "subunit_order"}
    bare = [r for r in rows if r.name == "Institute of Industrial Economics"]
    assert len(bare) == 1 and bare[0].article_ids == ["art_e"]


def test_generic_names_are_not_matched_across_articles() -> None:
    registry = Registry()
    registry.update(
        [
            make_record("art_a", [("Commission", [], "government", "EU")]),
            make_record("art_b", [("Commission", [], "government", "US")], published=date(2024, 2, 1)),
        ]
    )
    rows = registry.organisation_rows()
    assert len(rows) == 2 and {tuple(r.article_ids) for r in rows} == {("art_a",), ("art_b",)}
    assert len({r.id for r in rows}) == 2
    assert contextual_names(["Commission"]) == {"Commission"}


def test_organisations_one_article_keeps_apart_are_not_merged_by_weaker_rules() -> None:
    registry = Registry()
    registry.update([make_record("art_a", [("State Tobacco Monopoly Administration", [], "government", "CN"), ("STMA", [], "government", "CN")])])
    assert len(registry.organisation_rows()) == 2


def test_types_that_disagree_block_weaker_rules() -> None:
    registry = Registry()
    registry.update(
        [
            make_record("art_a", [("Summit Partners Group", [], "company", "US")]),
            make_record("art_b", [("Summit", [], "party", "US")], published=date(2024, 2, 1)),
        ]
    )
    assert len(registry.organisation_rows()) == 2


def test_a_quoted_persons_surname_read_as_an_organisation_is_never_merged(tmp_path: Path) -> None:
    real = make_record("art_a", [("Keller", [], "company", "DE")], published=date(2024, 1, 1))
    surname = make_record("art_b", [("Keller", [], "other", "DE")], [("We will appeal.", "Anna Keller", "person", None, None)], published=date(2024, 2, 1))
    later = make_record("art_c", [("Keller", [], "company", "DE")], published=date(2024, 3, 1))
    for order in ([real, surname, later], [surname, later, real]):
        registry = Registry()
        registry.update(order)
        ids = {r.id: set(r.article_ids) for r in registry.organisation_rows()}
        assert sorted(ids.values(), key=sorted) == [{"art_a", "art_c"}, {"art_b"}], ids
    # The same decision holds when a later run reads the stored registry back.
    write_all(tmp_path, surname)
    update_registry(tmp_path)
    write_all(tmp_path, later)
    update_registry(tmp_path)
    assert sorted(tuple(r.article_ids) for r in org_rows(tmp_path)) == [("art_b",), ("art_c",)]
    note = next(m for m in merge_rows(tmp_path) if m.article_id == "art_b")
    assert "person" in note.reason


# --------------------------------------------------------------------------- ids across runs


def test_the_result_does_not_depend_on_the_order_records_come_in() -> None:
    records = [
        make_record("art_c", [("TCL", [], "company", "CN")], [("We grow.", "Li Dongsheng", "person", "chairman", "TCL")], published=date(2024, 3, 1)),
        make_record("art_a", [("TCL Technology Group", [], "company", "CN")], published=date(2024, 1, 1)),
        make_record("art_b", [("TCL Technology Group Corp", [], "company", "CN")], [("We invest.", "Li Dongsheng", "person", "founder", "TCL Technology Group Corp")], published=date(2024, 2, 1)),
    ]
    outputs = []
    for order in (records, records[::-1], [records[1], records[0], records[2]]):
        registry = Registry()
        registry.update(order)
        outputs.append(([r.model_dump() for r in registry.organisation_rows()], [r.model_dump() for r in registry.speaker_rows()], [m.model_dump() for m in registry.merges]))
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][0][0]["id"] == organisation_id("TCL Technology Group"), "the earliest article names the entry"


def test_a_later_run_keeps_ids_even_when_a_better_name_arrives(tmp_path: Path) -> None:
    write_all(tmp_path, make_record("art_a", [("TCL", [], "company", "CN")], published=date(2024, 1, 1)))
    update_registry(tmp_path)
    first = org_rows(tmp_path)[0]
    assert first.id == organisation_id("TCL")
    write_all(
        tmp_path,
        make_record("art_b", [("TCL Technology Group", [], "company", "CN")], published=date(2023, 1, 1)),  # older article, later run
        make_record("art_c", [("TCL Technology Group", [], "company", "CN")], published=date(2024, 2, 1)),
    )
    stats = update_registry(tmp_path)
    rows = org_rows(tmp_path)
    assert [r.id for r in rows] == [first.id], "no renumbering, no second entry"
    assert rows[0].name == "TCL Technology Group", "the name most articles use"
    assert rows[0].aliases == ["TCL"]
    assert rows[0].first_seen_article == "art_a"
    assert stats.organisations_new == 0 and stats.organisations_in_several_articles == 1


@pytest.mark.parametrize("lost", [ORGANISATIONS, MERGES, "overwritten"])
def test_ids_survive_losing_either_the_registry_or_the_log(tmp_path: Path, lost: str) -> None:
    write_all(
        tmp_path,
        make_record("art_a", [("Kestrel", [], "company", "CN"), ("Commission", [], "government", "EU")], published=date(2024, 1, 1)),
        make_record("art_b", [("Kestrel Technology Group", [], "company", "CN")], published=date(2024, 2, 1)),
    )
    update_registry(tmp_path)
    before = {r.id: (r.name, r.article_ids) for r in org_rows(tmp_path)}
    if lost == "overwritten":  # e.g. by a per-article dump of the same file name
        (tmp_path / ORGANISATIONS).write_text(json.dumps({"article_id": "art_a", "id": organisation_id("Kestrel"), "name": "Kestrel"}) + "\n")
    else:
        (tmp_path / lost).unlink()
    update_registry(tmp_path)
    after = {r.id: (r.name, r.article_ids) for r in org_rows(tmp_path)}
    assert after == before


def test_an_update_is_idempotent_and_a_removed_article_keeps_its_ids(tmp_path: Path) -> None:
    a = make_record("art_a", [("Acme Group", ["ACG"], "company", "US")], [("Prices rise.", "Jane Roe", "person", "economist", "Acme Group")])
    b = make_record("art_b", [("Acme", [], "company", "US")], [("Costs fall.", "Jane Roe", "person", "chief economist", "Acme")], published=date(2024, 5, 1))
    write_all(tmp_path, a, b)
    update_registry(tmp_path)
    snapshot = registry_files(tmp_path)
    assert update_registry(tmp_path).merges_logged == 0
    assert registry_files(tmp_path) == snapshot, "same records, same bytes"
    (tmp_path / "records" / "art_b.json").unlink()
    update_registry(tmp_path)
    acme = org_rows(tmp_path)[0]
    assert acme.article_ids == ["art_a"] and "Acme" in acme.aliases, "aliases are kept, appearances follow the records"
    write_all(tmp_path, b)
    update_registry(tmp_path)
    assert [r.id for r in org_rows(tmp_path)] == [acme.id]
    assert len(merge_rows(tmp_path)) == len(json.loads("[" + ",".join(snapshot[MERGES].decode().splitlines()) + "]"))


# --------------------------------------------------------------------------- speakers


def test_a_person_is_one_speaker_across_articles_with_roles_over_time(tmp_path: Path) -> None:
    write_all(
        tmp_path,
        make_record("art_b", [("Acme Group", [], "company", "US")], [("Later.", "Jane Roe", "person", "chief executive", "Acme Group")], published=date(2025, 1, 1)),
        make_record("art_a", [("Beta Bank", [], "company", "US")], [("Earlier.", "Dr. Jane Roe", "person", "economist", "Beta Bank")], published=date(2023, 1, 1)),
        make_record("art_c", [], [("Reordered.", "Roe Jane", "person", None, None), ("Surname only.", "Roe", "person", None, None)], published=date(2025, 6, 1)),
        make_record("art_d", [("Acme Group", [], "company", "US")], [("We said it.", "Acme Group", "organisation", None, "Acme Group")], published=date(2025, 7, 1)),
    )
    update_registry(tmp_path)
    speakers = speaker_rows(tmp_path)
    jane = [s for s in speakers if person_key(s.name) == "jane roe"]
    assert len(jane) == 1
    jane = jane[0]
    assert jane.article_ids == ["art_a", "art_b", "art_c"]
    assert [(a.article_id, a.role, a.organisation_name) for a in jane.affiliations] == [
        ("art_a", "economist", "Beta Bank"),
        ("art_b", "chief executive", "Acme Group"),
        ("art_c", None, None),
    ]
    orgs = {r.name: r.id for r in org_rows(tmp_path)}
    assert jane.organisation_ids == [orgs["Beta Bank"], orgs["Acme Group"]]
    assert jane.name == "Jane Roe" and set(jane.aliases) == {"Dr. Jane Roe", "Roe Jane"}
    assert [s.name for s in speakers if s.name == "Roe"] == ["Roe"], "a surname alone is not merged into a full name"
    acme_speaker = next(s for s in speakers if s.kind == "organisation")
    assert acme_speaker.organisation_id == orgs["Acme Group"] and acme_speaker.quotes[0].article_id == "art_d"
    rules = {m.alias: m.rule for m in merge_rows(tmp_path) if m.entity == "speaker"}
    assert rules == {"Jane Roe": "new", "Dr. Jane Roe": "same_name", "Roe Jane": "name_order", "Roe": "new", "Acme Group": "new"}


def test_name_keys() -> None:
    assert name_key("The U.S. Federal Reserve") == name_key("U.S. Federal Reserve")
    assert name_key("U.N.") == name_key("UN") == "un"
    assert person_key("President Xi Jinping") == person_key("Xi Jinping")


# --------------------------------------------------------------------------- end to end on the dev set


NEW_ARTICLE = """title: Display maker raises spending as demand recovers
published: 2025-03-03
source: Synthetic Test Wire

Chinese electronics maker TCL Technology Group Corp said on Monday it would raise spending on next-generation display panels this year.

"Demand for large screens is recovering faster than we expected," said Li Dongsheng, chairman of TCL.

The company said it would build a new production line in Guangzhou and hire 2,000 engineers.
"""


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require_eval_dev()
    from pipeline.run import RunConfig, run_batch

    out = tmp_path_factory.mktemp("registry-runs")
    dev = tmp_path_factory.mktemp("dev-articles")  # a copy: the run reads only allowed folders
    for path in DEV_ARTICLES.iterdir():
        shutil.copy(path, dev / path.name)
    new_dir = tmp_path_factory.mktemp("new-article")
    (new_dir / "90_display_spending.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    snapshots = []
    for input_dir in (dev, dev, new_dir):
        manifest = run_batch(RunConfig(input_dir, out, rules_only=True))
        assert not manifest["failures"], manifest["failures"]
        stats = RegistryStats(**manifest["registry"])  # the run updates the registry as it finishes
        snapshots.append({"files": registry_files(out), "orgs": org_rows(out), "speakers": speaker_rows(out), "merges": merge_rows(out), "stats": stats})
    return {"out": out, "runs": snapshots, "records": {r.article.id: r for r in iter_records(out)}, "new_id": manifest["articles"][0]["article_id"]}


def test_a_second_run_on_the_same_articles_changes_nothing(three_runs: dict) -> None:
    first, second = three_runs["runs"][:2]
    assert first["stats"].organisations_new > 0 and first["stats"].organisations_in_several_articles > 0
    assert second["stats"].organisations_new == second["stats"].speakers_new == second["stats"].merges_logged == 0
    assert first["files"] == second["files"]


def test_ids_are_unchanged_and_the_new_article_joins_existing_entries(three_runs: dict) -> None:
    second, third = three_runs["runs"][1:]
    before = {r.id: r for r in second["orgs"]}
    after = {r.id: r for r in third["orgs"]}
    for org_id, row in before.items():
        assert org_id in after, f"{row.name} ({org_id}) disappeared"
        assert {row.name, *row.aliases} <= {after[org_id].name, *after[org_id].aliases}
        assert set(row.article_ids) <= set(after[org_id].article_ids)
    assert second["merges"] == third["merges"][: len(second["merges"])], "the log is append-only"

    new_id = three_runs["new_id"]
    tcl = row_named(third["orgs"], "TCL")
    assert tcl.id in before, "TCL was already in the registry"
    assert new_id in tcl.article_ids and len(tcl.article_ids) >= 2
    assert "TCL Technology Group Corp" in {tcl.name, *tcl.aliases}
    assert not [r for r in third["orgs"] if r.id != tcl.id and name_key(r.name).startswith("tcl")]
    new_forms = {m.alias: m for m in third["merges"][len(second["merges"]) :] if m.entity == "organisation"}
    assert new_forms["TCL Technology Group Corp"].id == tcl.id
    assert new_forms["TCL Technology Group Corp"].rule in ("legal_suffix", "short_form", "article_alias")

    li = [s for s in third["speakers"] if s.name == "Li Dongsheng"]
    assert len(li) == 1 and new_id in li[0].article_ids and len(li[0].article_ids) == 2
    assert li[0].organisation_ids == [tcl.id]
    assert [a.role for a in li[0].affiliations][-1] in ("chairman", "chairman of TCL")  # the guidelines' role leaves the organisation out


def test_organisations_named_in_several_articles_appear_once(three_runs: dict) -> None:
    rows = three_runs["runs"][2]["orgs"]
    records = three_runs["records"]
    owner: dict[str, str] = {}
    for row in rows:
        for name in set({row.name, *row.aliases}) - contextual_names([row.name, *row.aliases]):
            assert owner.setdefault(name_key(name), row.id) == row.id, f"{name!r} is in two registry rows"
    # Every (article, record organisation) is in exactly one registry row.
    pairs = [(ap.article_id, ap.record_id) for row in rows for ap in row.appearances]
    assert sorted(pairs) == sorted((r.article.id, o.id) for r in records.values() for o in r.organisations)
    # The gold organisations named in several dev articles, when the records found them there, are one row each.
    gold_articles: dict[str, set[str]] = {}
    for path in DEV_GOLD.glob("*.json"):
        gold = json.loads(path.read_text())
        for org in gold["organisations"]:
            gold_articles.setdefault(org["name"], set()).add(gold["source_file"])
    checked = 0
    for name, files in gold_articles.items():
        found = {r.article.id for r in records.values() if r.article.source_file in files and any(name_key(name) in {name_key(n) for n in (o.name, *o.aliases)} for o in r.organisations)}
        if len(files) > 1 and len(found) > 1:
            assert found <= set(row_named(rows, name).article_ids), name
            checked += 1
    assert checked >= 3, "the dev set has four organisations named in several articles"
