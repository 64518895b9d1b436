"""docs/sql.md, the SQL contract campaign tools code against, checked against what a real job stores.

A tiny model is trained once per module; two small jobs run in-process (the second resubmits a
product, so copy_latest_variants has something to choose between), and the doc is read as data:
its view and table columns, its indexes, the type and numbering of every view column, its flags
and their examples, every SELECT in a ```sql block and the Python example. SQLite runs in the fast
tests; PostgreSQL runs every check in one integration test on a fresh database. A query is run on
the database its introducing line names ("both", "PostgreSQL" or "SQLite").
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

DOC = Path(__file__).resolve().parent.parent / "docs" / "sql.md"

# Every flag the worker writes (worker/filters.py's docstring), as the pattern a stored flag matches.
WORKER_FLAGS = {
    "ad_law": r"ad_law:[^:\s]+",
    "contradiction": r"contradiction:[^:\s]+:[^:\s]+",
    "unstated": r"unstated:[^:\s]+",
    "near_duplicate": r"near_duplicate",
    "repetition": r"repetition",
    "too_short": r"too_short",
    "too_long": r"too_long",
    "empty": r"empty",
}

CAMPAIGN = "双11"
PRODUCTS = [
    {"external_id": "SKU-1001", "title": "纯棉白色T恤", "category": "上衣",
     "attributes": {"类型": ["上衣"], "颜色": ["白色"], "材质": ["棉"], "风格": ["简约"]}},
    {"external_id": "SKU-1002", "title": "复古连衣裙", "category": "裙",
     "attributes": {"类型": ["裙"], "颜色": ["红色"], "裙长": ["连衣裙"], "风格": ["复古"]}},
    {"external_id": "SKU-1003", "title": "牛仔阔腿裤", "category": "裤",
     "attributes": {"类型": ["裤"], "裤型": ["阔腿裤"], "材质": ["牛仔布"]}},
]
VARIANTS = 3
RED_PRODUCT = "SKU-1002"  # the one the doc's attribute query (颜色 = 红色) must find


# -- reading the doc -----------------------------------------------------------------------------


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(doc: str, title: str) -> str:
    """The body of the `## title...` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", doc, re.MULTILINE | re.DOTALL)
    assert match, f"docs/sql.md has no '## {title}' section"
    return match.group(1)


def subsection(body: str, title: str) -> str:
    match = re.search(rf"^### {re.escape(title)}\s*$(.*?)(?=^##|\Z)", body, re.MULTILINE | re.DOTALL)
    assert match, f"docs/sql.md has no '### {title}' subsection"
    return match.group(1)


def tables(body: str) -> list[list[list[str]]]:
    """The markdown tables in body: rows of cells, header first, the --- row left out."""
    found, current = [], []
    for line in body.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def ticked(cell: str) -> list[str]:
    """The `backticked` spans of a cell."""
    return re.findall(r"`([^`]+)`", cell)


def view_doc(doc: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """(the view names, {column: (type, meaning)}) of the Views section: all views share one table."""
    body = section(doc, "Views")
    names = re.findall(r"^- \*\*`(\w+)`\*\*", body, re.MULTILINE)
    table = tables(body.split("### ")[0])
    assert len(table) == 1, "the Views section should hold one column table, shared by every view"
    header, *rows = table[0]
    assert [h.lower() for h in header[:3]] == ["column", "type", "meaning"], header
    columns = {}
    for cells in rows:
        for name in ticked(cells[0]):
            columns[name] = (cells[1], cells[2])
    return names, columns


def review_column_doc(doc: str) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """(the views the Review columns subsection names, {column: (type, meaning)}): columns those views
    have beyond the shared ones."""
    body = subsection(section(doc, "Views"), "Review columns")
    views = set(re.findall(r"`(copy_\w+)`", body.split("|")[0]))
    table = tables(body)
    assert len(table) == 1 and views, "the Review columns subsection should name its views and hold one table"
    return views, {ticked(cells[0])[0]: (cells[1], cells[2]) for cells in table[0][1:]}


def flag_doc(doc: str) -> dict[str, str]:
    """{flag template as written (`ad_law:<term>`): its meaning} from the Flags table."""
    table = tables(subsection(section(doc, "Views"), "Flags"))
    assert len(table) == 1, "the Flags subsection should hold one table"
    return {ticked(cells[0])[0]: cells[1] for cells in table[0][1:]}


def template_pattern(template: str) -> str:
    """`contradiction:<key>:<word>` -> a regex: each <placeholder> is one colon-free word."""
    return "".join(r"[^:\s]+" if part.startswith("<") else re.escape(part)
                   for part in re.split(r"(<[^>]+>)", template) if part)


def example_flags(doc: str) -> list[str]:
    """Every flag the doc shows as an example: the items of backticked JSON arrays anywhere, and the
    backticked `kind:...` examples in the Flags table's meaning column."""
    found = []
    for span in re.findall(r"`(\[[^`]*\])`", doc):
        value = json.loads(span)
        assert all(isinstance(v, str) for v in value), span
        found += value
    for template, meaning in flag_doc(doc).items():
        prefix = template.split("<")[0]
        if prefix != template:
            found += [t for t in ticked(meaning) if t.startswith(prefix)]
    return found


def table_doc(doc: str) -> dict[str, tuple[set[str], set[str]]]:
    """{table: (every identifier the table's paragraph mentions, the columns it documents)}.

    A table's paragraph starts with "`name`:"; a markdown table right after it belongs to it. Its
    documented columns are the first cells of that markdown table, and in prose each clause (split
    at ';' and '. ') that starts with a backticked name.
    """
    body = section(doc, "Tables")
    result: dict[str, tuple[set[str], set[str]]] = {}
    current = None
    for paragraph in re.split(r"\n\s*\n", body):
        paragraph = paragraph.strip()
        head = re.match(r"`(\w+)`:", paragraph)
        if head:
            current = head.group(1)
            result[current] = (set(), set())
            paragraph = paragraph[head.end():]
        elif not paragraph.startswith("|"):
            current = None
        if current is None:
            continue
        mentioned, documented = result[current]
        for span in ticked(paragraph):
            mentioned.update(re.findall(r"\w+", span))
        for cells in (tables(paragraph)[0][1:] if paragraph.startswith("|") else []):
            documented.update(ticked(cells[0]))
        if not paragraph.startswith("|"):
            for clause in re.split(r";|\.\s", " ".join(paragraph.split())):
                name = re.match(r"\s*`(\w+)`", clause)
                if name:
                    documented.add(name.group(1))
    return result


def index_doc(doc: str) -> list[tuple[str, tuple[str, ...]]]:
    """The `table (col, col)` indexes the Tables section names."""
    body = section(doc, "Tables")
    return [(t, tuple(c.strip() for c in cols.split(",")))
            for t, cols in re.findall(r"`(\w+) \(([\w, ]+)\)`", body)]


def sql_examples(doc: str) -> list[tuple[str, str]]:
    """(database, query) of every ```sql block: database is both, postgresql or sqlite, read from
    the last line of prose before the block."""
    found = []
    for match in re.finditer(r"^```sql\n(.*?)^```", doc, re.MULTILINE | re.DOTALL):
        before = [line for line in doc[: match.start()].splitlines() if line.strip()]
        label = re.search(r"\b(both|PostgreSQL|SQLite)\b", before[-1])
        assert label, f"say which database runs this query (both, PostgreSQL, SQLite): {before[-1]!r}"
        found.append((label.group(1).lower(), match.group(1)))
    return found


def python_example(doc: str) -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", section(doc, "From Python"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the From Python section should hold one python block"
    return blocks[0]


def sqlite_timestamp_pattern(doc: str) -> str:
    """The format of a SQLite timestamp, from the doc's example (`2024-11-11 00:00:00.000000`)."""
    example = re.search(r"SQLite stores naive UTC text\s*\(`([^`]+)`\)", doc)
    assert example, "docs/sql.md no longer shows how SQLite stores a timestamp"
    return re.sub(r"\\?\d", r"\\d", re.escape(example.group(1)))


# -- a real job -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from trainer.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("docs_sql") / "tiny")


def run_jobs(url: str, checkpoint: Path) -> SimpleNamespace:
    """Create the schema at url and run two small jobs in-process; the second resubmits one product."""
    from copygen.settings import Settings
    from db.engine import upgrade
    from worker.submit import submit_job

    upgrade(url)
    settings = Settings(database_url=url, checkpoint=checkpoint, broker_url="memory://", threads=1,
                        chunk_size=2)
    first = submit_job(PRODUCTS, VARIANTS, length="medium", campaign=CAMPAIGN, seed=0, settings=settings)
    # every copy of the second job starts with a colour the white T-shirt is not: stored all the same,
    # flagged contradiction (an opening with an Advertising Law term is refused at submission)
    again = submit_job(PRODUCTS[:1], VARIANTS, length="short", seed=1, opening="黑色款，", settings=settings)
    return SimpleNamespace(url=url, job_id=first, second_job_id=again)


@pytest.fixture(scope="module")
def sqlite_jobs(tmp_path_factory, checkpoint):
    return run_jobs(f"sqlite:///{tmp_path_factory.mktemp('docs_sql_db') / 'copygen.db'}", checkpoint)


def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def job_rows(jobs: SimpleNamespace, view: str = "copy_job_variants") -> list[dict[str, Any]]:
    return rows(jobs.url, f"SELECT * FROM {view} WHERE job_id IN (:a, :b)",
                a=jobs.job_id, b=jobs.second_job_id)


def as_list(flags: Any) -> list[str]:
    return json.loads(flags) if isinstance(flags, str) else flags  # JSON text on SQLite, jsonb on PostgreSQL


def matches(flag: str, patterns: Iterable[str]) -> bool:
    return any(re.fullmatch(p, flag) for p in patterns)


def differences(documented: Iterable[str], actual: Iterable[str]) -> str:
    documented, actual = set(documented), set(actual)
    missing, undocumented = sorted(documented - actual), sorted(actual - documented)
    return f"documented but missing: {missing}; undocumented: {undocumented}"


# -- the checks, shared by the SQLite tests and the PostgreSQL test -------------------------------


def check_view_columns(jobs: SimpleNamespace) -> None:
    names, columns = view_doc(doc_text())
    reviewed, review_columns = review_column_doc(doc_text())
    engine = create_engine(jobs.url)
    try:
        insp = inspect(engine)
        views = insp.get_view_names()
        assert set(names) == set(views), f"views: {differences(names, views)}"
        for view in names:
            actual = [c["name"] for c in insp.get_columns(view)]
            documented = set(columns) | (set(review_columns) if view in reviewed else set())
            assert documented == set(actual), f"{view}: {differences(documented, actual)}"
    finally:
        engine.dispose()


def check_table_columns(jobs: SimpleNamespace) -> None:
    documented = table_doc(doc_text())
    engine = create_engine(jobs.url)
    try:
        insp = inspect(engine)
        actual = {t: [c["name"] for c in insp.get_columns(t)]
                  for t in insp.get_table_names() if t != "alembic_version"}
        indexes = {t: [tuple(i["column_names"]) for i in insp.get_indexes(t) + insp.get_unique_constraints(t)]
                   + [tuple(insp.get_pk_constraint(t)["constrained_columns"])] for t in actual}
    finally:
        engine.dispose()
    assert set(documented) == set(actual), f"tables: {differences(documented, actual)}"
    for table, columns in actual.items():
        mentioned, named = documented[table]
        assert not set(columns) - mentioned, f"{table}: undocumented: {sorted(set(columns) - mentioned)}"
        assert not named - set(columns), f"{table}: documented but missing: {sorted(named - set(columns))}"
    for table, columns in index_doc(doc_text()):
        assert columns in indexes.get(table, []), f"no index {table} {columns}, named by the doc"


def check_value_type(column: str, doc_type: str, value: Any, dialect: str, stamp: str) -> None:
    """value has the type docs/sql.md gives the column (`text (uuid)`, `int`, `bool`, ...)."""
    kind = doc_type.split(",")[0].split("(")[0].strip()
    where = f"{column} = {value!r} (documented as {doc_type!r})"
    if value is None:
        assert "nullable" in doc_type, f"{where} is NULL"
    elif kind == "text":
        assert isinstance(value, str), where
        if "uuid" in doc_type:
            uuid.UUID(value)
    elif kind in ("int", "bigint"):
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "float":
        assert isinstance(value, float), where
    elif kind == "bool":
        assert isinstance(value, bool) if dialect == "postgresql" else value in (0, 1), where
    elif kind == "JSON array of text":
        flags = as_list(value)
        assert isinstance(flags, list) and all(isinstance(f, str) for f in flags), where
    elif kind == "timestamp":
        if dialect == "postgresql":
            assert isinstance(value, datetime) and value.utcoffset() is not None, where
        else:
            assert isinstance(value, str) and re.fullmatch(stamp, value), f"{where}, not like {stamp}"
    else:
        pytest.fail(f"docs/sql.md documents {column} with a type this test does not know: {doc_type!r}")


def check_view_values(jobs: SimpleNamespace, dialect: str) -> None:
    """Every view column's values have the documented type; numbered columns count from where the
    doc says; rank, score, passed and flags agree with each other as the doc says."""
    doc = doc_text()
    _, columns = view_doc(doc)
    stamp = sqlite_timestamp_pattern(doc)
    stored = job_rows(jobs)
    assert len(stored) == (len(PRODUCTS) + 1) * VARIANTS, "every product should have all its variants stored"
    # The first job's copy passes, the second job's opening is an Advertising Law term: both kinds are checked.
    assert {bool(r["passed"]) for r in stored} == {True, False}, "jobs should store passed and flagged copy"
    for row in stored:
        for column, (doc_type, _) in columns.items():
            assert column in row, f"{column} is documented but not a column of copy_job_variants"
            check_value_type(column, doc_type, row[column], dialect, stamp)

    items = defaultdict(list)
    for row in stored:
        items[row["job_item_id"]].append(row)
    for column, (_, meaning) in columns.items():
        start = re.search(r"\bfrom (\d+)\b", meaning)
        if not start:
            continue
        first = int(start.group(1))
        if all(len({r[column] for r in group}) == 1 for group in items.values()):  # a product's column
            for job_id in (jobs.job_id, jobs.second_job_id):
                values = sorted({r[column] for r in stored if r["job_id"] == job_id})
                expected = list(range(first, first + len(values)))
                assert values == expected, f"{column} should count from {first}: {values}"
        else:  # a variant's column
            for group in items.values():
                values = sorted(r[column] for r in group)
                expected = list(range(first, first + VARIANTS))
                assert values == expected, f"{column} should count from {first}: {values}"

    for group in items.values():
        for row in group:
            flags, passed, score = as_list(row["flags"]), bool(row["passed"]), row["score"]
            assert passed == (flags == []), f"passed is {passed} with flags {flags}"
            assert (score >= 0) == passed, f"score {score} with passed={passed}"
        keys = [(not r["passed"], -r["score"]) for r in sorted(group, key=lambda r: r["rank"])]
        assert keys == sorted(keys), "rank should order passed before flagged, then by score"


def check_stored_flags(jobs: SimpleNamespace) -> None:
    """Every flag stored is one the worker writes and one the doc lists."""
    templates = [template_pattern(t) for t in flag_doc(doc_text())]
    for flag in (f for row in job_rows(jobs) for f in as_list(row["flags"])):
        assert matches(flag, WORKER_FLAGS.values()), f"the worker wrote an unknown flag {flag!r}"
        assert matches(flag, templates), f"stored flag {flag!r} is not in the doc's Flags table"


def check_views_select_what_the_doc_says(jobs: SimpleNamespace) -> None:
    def keys(found: Iterable[dict[str, Any]]) -> set[tuple[int, int]]:
        return {(r["job_item_id"], r["variant_no"]) for r in found}

    every = job_rows(jobs)
    best = [r for r in every if r["rank"] == 1 and r["passed"]]
    assert keys(job_rows(jobs, "copy_best_variants")) == keys(best), "copy_best_variants: rank 1 and passed"
    newest = defaultdict(int)
    for r in every:
        newest[r["external_id"]] = max(newest[r["external_id"]], r["job_item_id"])
    latest = [r for r in every if r["job_item_id"] == newest[r["external_id"]]]
    assert keys(rows(jobs.url, "SELECT * FROM copy_latest_variants")) == keys(latest), \
        "copy_latest_variants: each product's variants from its most recently submitted job"
    resubmitted = rows(jobs.url, "SELECT job_id FROM copy_latest_variants WHERE external_id = :e",
                       e=PRODUCTS[0]["external_id"])
    assert {r["job_id"] for r in resubmitted} == {jobs.second_job_id}, "a resubmitted product: new copy"


def check_example_queries(jobs: SimpleNamespace, dialect: str) -> int:
    """Run every SELECT of the doc meant for this database; returns how many ran."""
    params = {"job_id": jobs.job_id, "campaign": CAMPAIGN, "external_id": PRODUCTS[0]["external_id"],
              "idempotency_key": "no-such-key"}
    ran = 0
    for database, sql in sql_examples(doc_text()):
        if database not in ("both", dialect) or not re.match(r"\s*(SELECT|WITH)\b", sql, re.IGNORECASE):
            continue
        try:
            result = rows(jobs.url, sql, **params)
        except SQLAlchemyError as exc:  # name the query that broke, not just the driver's message
            pytest.fail(f"this {database} query from docs/sql.md fails on {dialect}:\n{sql}\n{exc}")
        if "attributes" in sql:
            found = [r["external_id"] for r in result]
            assert found == [RED_PRODUCT], f"the attribute query found {found}, not {RED_PRODUCT}:\n{sql}"
        ran += 1
    assert ran >= 8, f"only {ran} queries of docs/sql.md ran on {dialect}; is the doc parsed right?"
    return ran


def check_python_example(jobs: SimpleNamespace) -> None:
    code = python_example(doc_text())
    assert re.search(r'make_engine\("[^"]*"\)', code), "the Python example should open an engine by URL"
    namespace: dict[str, Any] = {"job_id": jobs.job_id}
    code = re.sub(r'make_engine\("[^"]*"\)', f"make_engine({jobs.url!r})", code)
    exec(compile(code, "docs/sql.md", "exec"), namespace)  # noqa: S102 (running the doc's code is the test)
    namespace["engine"].dispose()
    assert namespace.get("v"), "the Python example should iterate over the job's variants"


# -- the doc alone --------------------------------------------------------------------------------


def test_the_flags_table_lists_exactly_the_flags_the_worker_writes():
    from copygen.compliance import load_lexicon
    from worker import filters

    documented = flag_doc(doc_text())
    patterns = [template_pattern(t) for t in documented]
    white = SimpleNamespace(attributes={"颜色": ["白色"]})
    lexicon = load_lexicon()
    written = set()
    for text_, siblings, length, stated_only in [
        ("", [], "short", False),  # empty
        ("这是最好的黑色上衣", [], "short", False),  # ad_law:最好, contradiction:颜色:黑色
        ("简约的白色上衣百搭", ["简约的白色上衣百搭"], "short", False),  # near_duplicate
        ("好看好看好看好看好看好看", [], "short", False),  # repetition
        ("上衣", [], "medium", False),  # too_short
        ("白色" * 200, [], "short", False),  # too_long
        ("白色印花上衣", [], "short", True),  # unstated:印花
    ]:
        written.update(filters.check(text_, white, lexicon, siblings, length=length, stated_only=stated_only))
    for flag in written:
        assert matches(flag, WORKER_FLAGS.values()), f"the worker writes {flag!r}, unknown to this test"
        assert matches(flag, patterns), f"the worker writes {flag!r}; the Flags table lacks it"
    for kind, pattern in WORKER_FLAGS.items():
        assert any(re.fullmatch(pattern, f) for f in written), f"the inputs above should make a {kind} flag"
        assert pattern in patterns, f"the Flags table lacks (or misspells) the {kind} flag"
    assert len(patterns) == len(WORKER_FLAGS), f"the Flags table lists unknown flags: {documented}"


def test_every_example_flag_in_the_doc_is_one_the_worker_writes():
    from copygen.compliance import load_lexicon

    examples = example_flags(doc_text())
    assert examples, "docs/sql.md should show example flags"
    terms = set(load_lexicon().terms)
    for flag in examples:
        assert matches(flag, WORKER_FLAGS.values()), f"example flag {flag!r}: the worker never writes it"
        if flag.startswith("ad_law:"):
            assert flag.removeprefix("ad_law:") in terms, f"{flag!r}: not an Advertising Law lexicon term"


def test_every_sql_block_of_the_doc_says_which_database_runs_it():
    examples = sql_examples(doc_text())
    assert {db for db, _ in examples} == {"both", "postgresql", "sqlite"}, examples


# -- SQLite (fast) ---------------------------------------------------------------------------------


def test_every_view_has_exactly_the_columns_the_doc_documents(sqlite_jobs):
    check_view_columns(sqlite_jobs)


def test_every_table_column_and_named_index_in_the_doc_exists_and_none_is_undocumented(sqlite_jobs):
    check_table_columns(sqlite_jobs)


def test_view_values_have_the_documented_types_numbering_and_ranking(sqlite_jobs):
    check_view_values(sqlite_jobs, "sqlite")


def test_every_flag_a_job_stores_is_in_the_docs_flags_table(sqlite_jobs):
    check_stored_flags(sqlite_jobs)


def test_the_views_select_the_rows_the_doc_says(sqlite_jobs):
    check_views_select_what_the_doc_says(sqlite_jobs)


def test_every_example_query_for_sqlite_runs_against_a_real_job(sqlite_jobs):
    check_example_queries(sqlite_jobs, "sqlite")


def test_the_python_example_runs_against_a_real_job(sqlite_jobs):
    check_python_example(sqlite_jobs)


# -- PostgreSQL -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_the_doc_holds_for_a_real_job_on_postgresql(pg_url, checkpoint):
    jobs = run_jobs(pg_url, checkpoint)
    check_view_columns(jobs)
    check_table_columns(jobs)
    check_view_values(jobs, "postgresql")
    check_stored_flags(jobs)
    check_views_select_what_the_doc_says(jobs)
    check_example_queries(jobs, "postgresql")
    check_python_example(jobs)
