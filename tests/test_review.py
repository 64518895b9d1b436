"""Reviewers' decisions: the review workbook round trip, the Python function, decisions that outlive
a re-delivered and a regenerated chunk, copy_approved_variants on SQLite and PostgreSQL, the campaign
role's grant on it, and `copygen review status`.

One real job (a tiny model, in-process, SQLite) is generated per module and copied into each test's
own database, so every test starts from the same stored copy.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from copygen.cli import main
from copygen.settings import Settings, get_settings
from worker import runtime

REPO = Path(__file__).resolve().parent.parent
PRODUCTS = [
    {"external_id": "W-1", "title": "白色棉衬衫", "attributes": {"类型": ["上衣"], "颜色": ["白色"], "材质": ["棉"]}},
    {"external_id": "B-2", "title": "黑色复古连衣裙", "attributes": {"类型": ["裙"], "颜色": ["黑色"], "风格": ["复古"]}},
    {"external_id": "P-3", "title": "阔腿裤", "attributes": {"类型": ["裤"], "裤型": ["阔腿裤"]}},
]
VARIANTS = 3
GOOD_EDIT = "纯棉白色衬衫，简约百搭，通勤休闲都合适。"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from trainer.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("review") / "tiny")


@pytest.fixture(scope="module")
def template(tmp_path_factory, checkpoint):
    """A SQLite copy store holding one real job: 3 products x 3 variants, 2 chunks."""
    from worker.submit import submit_job

    folder = tmp_path_factory.mktemp("review_store")
    url = f"sqlite:///{folder / 'copy.db'}"
    settings = Settings(database_url=url, checkpoint=checkpoint, broker_url="memory://", threads=1, chunk_size=2,
                        regenerate_rounds=0)
    job_id = submit_job(PRODUCTS, VARIANTS, length="medium", campaign="spring", seed=0, settings=settings)
    runtime.reset()  # every connection closed: the WAL is folded into the file, which can be copied
    return folder / "copy.db", job_id


@pytest.fixture
def store(template, tmp_path, monkeypatch, checkpoint):
    """This test's copy of the job's store, as COPYGEN_DATABASE_URL; yields (url, job_id)."""
    source, job_id = template
    shutil.copy(source, tmp_path / "copy.db")
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    monkeypatch.setenv("COPYGEN_DATABASE_URL", url)
    monkeypatch.setenv("COPYGEN_BROKER_URL", "memory://")
    monkeypatch.setenv("COPYGEN_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("COPYGEN_REGENERATE_ROUNDS", "0")
    get_settings.cache_clear()
    yield url, job_id
    runtime.reset()
    get_settings.cache_clear()


def rows(url: str, sql: str, **params) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def decision_rows(url: str) -> list[tuple]:
    return [tuple(r.values()) for r in rows(
        url, "SELECT job_item_id, variant_no, decision, edited_text, reason, reviewer FROM review_decisions ORDER BY id")]


def export_sheet(job_id: str, out: Path) -> tuple:
    assert main(["export", job_id, "--format", "xlsx", "--for-review", "--out", str(out)]) == 0
    book = load_workbook(out)
    sheet = book["review"]
    headers = [c.value for c in sheet[1]]
    return book, sheet, headers


def fill(sheet, headers, row: int, **values) -> None:
    for name, value in values.items():
        sheet.cell(row, headers.index(name) + 1, value)


def sheet_row(sheet, headers, external_id: str, variant_no: int) -> int:
    for n, cells in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        if cells[headers.index("external_id")] == external_id and cells[headers.index("variant_no")] == variant_no:
            return n
    raise AssertionError(f"no row for {external_id} variant {variant_no}")


# -- the workbook -----------------------------------------------------------------------------------


def test_the_review_workbook_has_a_row_per_variant_empty_inputs_and_drop_down_lists(store, tmp_path):
    url, job_id = store
    _, sheet, headers = export_sheet(job_id, tmp_path / "review.xlsx")
    assert headers[:3] == ["job_id", "external_id", "variant_no"]
    assert {"title", "category", "attributes", "description", "rank", "score", "passed", "flags", "text",
            "decision", "edited_text", "reason", "reviewer"} <= set(headers)
    body = list(sheet.iter_rows(min_row=2, values_only=True))
    stored = rows(url, "SELECT external_id, variant_no, text FROM copy_job_variants WHERE job_id = :j", j=job_id)
    assert len(body) == len(stored) == len(PRODUCTS) * VARIANTS
    assert {(r[1], r[2], r[headers.index("text")]) for r in body} == {tuple(s.values()) for s in stored}
    assert all(r[headers.index(c)] is None for r in body for c in ("decision", "edited_text", "reason", "reviewer"))
    white = next(r for r in body if r[1] == "W-1")
    assert white[headers.index("attributes")] == "类型: 上衣; 颜色: 白色; 材质: 棉"
    lists = {dv.formula1: str(dv.sqref) for dv in sheet.data_validations.dataValidation}
    decision_col = chr(ord("A") + headers.index("decision"))
    reason_col = chr(ord("A") + headers.index("reason"))
    assert lists['"approved,edited,rejected"'] == f"{decision_col}2:{decision_col}{len(body) + 1}"
    assert lists['"wrong_fact,tone,length,compliance,other"'] == f"{reason_col}2:{reason_col}{len(body) + 1}"


def test_a_filled_workbook_applies_its_good_rows_refuses_the_bad_by_row_and_column_and_imports_once(
        store, tmp_path, capsys):
    url, job_id = store
    book, sheet, headers = export_sheet(job_id, tmp_path / "review.xlsx")
    at = {(e, v): sheet_row(sheet, headers, e, v) for e in ("W-1", "B-2", "P-3") for v in (1, 2, 3)}
    fill(sheet, headers, at["W-1", 1], decision="approved")
    fill(sheet, headers, at["W-1", 2], decision="edited", edited_text=GOOD_EDIT, reason="tone")
    fill(sheet, headers, at["W-1", 3], decision="rejected", reason="wrong_fact", reviewer="wang.fang")
    fill(sheet, headers, at["B-2", 1], decision="maybe")  # not in the list
    fill(sheet, headers, at["B-2", 2], decision="edited", edited_text="全网最好的复古连衣裙。")  # Advertising Law
    fill(sheet, headers, at["B-2", 3], decision="edited", edited_text="白色复古连衣裙，优雅大方。")  # 白色: it is black
    fill(sheet, headers, at["P-3", 1], decision="approved", variant_no=7)  # no such variant
    fill(sheet, headers, at["P-3", 2], decision="rejected", reason="ugly")  # reason not in the list
    fill(sheet, headers, at["P-3", 3], decision="approved", edited_text="多余的文字")  # text on an approval
    book.save(tmp_path / "filled.xlsx")

    assert main(["review", "import", str(tmp_path / "filled.xlsx"), "--reviewer", "li.na"]) == 1
    out = capsys.readouterr().out
    assert "9 reviewed rows: 3 decisions recorded, 0 unchanged (recorded before), 6 rows refused" in out

    def col(name):
        return f"column {name} ({chr(ord('A') + headers.index(name))})"

    refused = [line.strip() for line in out.splitlines()[1:]]
    assert refused == [
        f"row {at['B-2', 1]}, {col('decision')}: 'maybe': choose one of approved, edited, rejected",
        f"row {at['B-2', 2]}, {col('edited_text')}: the edit breaks the Advertising Law: 最好",
        f"row {at['B-2', 3]}, {col('edited_text')}: the edit names 白色, which the product's 颜色 excludes",
        f"row {at['P-3', 1]}, {col('variant_no')}: no variant 7 of product 'P-3' in job {job_id}",
        f"row {at['P-3', 2]}, {col('reason')}: 'ugly': choose one of wrong_fact, tone, length, compliance, other",
        f"row {at['P-3', 3]}, {col('edited_text')}: only an 'edited' decision carries new text, this one is 'approved'",
    ]
    first = decision_rows(url)
    assert [(d[1], d[2], d[3], d[4], d[5]) for d in first] == [
        (1, "approved", None, None, "li.na"), (2, "edited", GOOD_EDIT, "tone", "li.na"),
        (3, "rejected", None, "wrong_fact", "wang.fang")]
    approved = rows(url, "SELECT external_id, variant_no, decision, text, generated_text, reviewer "
                         "FROM copy_approved_variants WHERE job_id = :j", j=job_id)
    assert len(approved) == 1 and approved[0]["external_id"] == "W-1"
    assert (approved[0]["variant_no"], approved[0]["decision"], approved[0]["text"]) == (2, "edited", GOOD_EDIT)

    # the same file again: nothing recorded, nothing changed
    assert main(["review", "import", str(tmp_path / "filled.xlsx")]) == 1
    assert "0 decisions recorded, 3 unchanged" in capsys.readouterr().out
    assert decision_rows(url) == first

    # a later workbook that leaves the decided rows empty or gets them wrong loses nothing decided
    book, sheet, headers = export_sheet(job_id, tmp_path / "again.xlsx")
    fill(sheet, headers, sheet_row(sheet, headers, "W-1", 2), decision="edited", edited_text="最佳白衬衫")
    fill(sheet, headers, sheet_row(sheet, headers, "B-2", 1), decision="approved")
    book.save(tmp_path / "again.xlsx")
    assert main(["review", "import", str(tmp_path / "again.xlsx")]) == 1
    assert "1 decisions recorded, 0 unchanged (recorded before), 1 rows refused" in capsys.readouterr().out
    assert decision_rows(url)[:3] == first
    published = rows(url, "SELECT external_id, text FROM copy_approved_variants WHERE job_id = :j "
                          "ORDER BY external_id", j=job_id)
    assert [r["external_id"] for r in published] == ["B-2", "W-1"] and published[1]["text"] == GOOD_EDIT

    assert main(["review", "status", job_id]) == 0
    status = capsys.readouterr().out
    assert ("9 variants of 3 products: 2 approved, 1 edited, 1 rejected (wrong_fact 1), 5 undecided; "
            "2 products have copy to publish") in status


def test_a_workbook_without_the_key_columns_is_refused_naming_the_column(store, tmp_path, capsys):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["job_id", "sku", "variant_no", "decision"])
    book.save(tmp_path / "other.xlsx")
    assert main(["review", "import", str(tmp_path / "other.xlsx")]) == 2
    assert "has no column 'external_id'" in capsys.readouterr().err
    (tmp_path / "not.xlsx").write_text("external_id,decision\n", encoding="utf-8")
    assert main(["review", "import", str(tmp_path / "not.xlsx")]) == 2
    assert "not an Excel workbook" in capsys.readouterr().err


def test_for_review_needs_the_xlsx_format(store, tmp_path, capsys):
    _, job_id = store
    assert main(["export", job_id, "--format", "csv", "--for-review", "--out", str(tmp_path / "r.csv")]) == 2
    assert "use --format xlsx" in capsys.readouterr().err


# -- the Python function and the chunk it must outlive ------------------------------------------------


def test_the_python_function_records_checks_and_keys_decisions(store):
    from worker.review import record_reviews

    url, job_id = store
    decisions = [
        {"job_id": job_id, "external_id": "W-1", "variant_no": 1, "decision": "approved"},
        {"job_id": job_id, "external_id": "W-1", "variant_no": 2, "decision": "rejected", "reason": "length"},
        {"job_id": job_id, "external_id": "W-1", "variant_no": 3, "decision": "edited"},  # no text
        {"job_id": "no-such-job", "external_id": "W-1", "variant_no": 1, "decision": "approved"},
        "approved",
    ]
    outcome = record_reviews(decisions, reviewer="li.na", idempotency_key="crm-0001")
    assert (outcome.recorded, outcome.unchanged) == (2, 0)
    assert [(r.index, r.field) for r in outcome.refused] == [(2, "edited_text"), (3, "variant_no"), (4, "decision")]
    again = record_reviews(decisions, reviewer="li.na", idempotency_key="crm-0001")
    assert (again.recorded, again.unchanged) == (0, 2)
    keys = rows(url, "SELECT idempotency_key, source FROM review_decisions ORDER BY id")
    assert keys == [{"idempotency_key": "crm-0001:0", "source": "python"},
                    {"idempotency_key": "crm-0001:1", "source": "python"}]
    # a change of mind is appended; the history stays and the latest counts
    later = record_reviews([{**decisions[1], "decision": "approved", "reason": None}], reviewer="wang.fang")
    assert later.recorded == 1
    assert [d[2] for d in decision_rows(url)] == ["approved", "rejected", "approved"]
    nobody = record_reviews([{**decisions[0], "decision": "rejected", "reviewer": None}])  # no default given
    assert (nobody.recorded, [r.field for r in nobody.refused]) == (0, ["reviewer"])


def test_decisions_survive_a_redelivered_chunk_and_a_regenerated_one(store, capsys):
    from db.engine import make_engine, session_scope
    from db.jobs import job_chunks
    from worker.dispatch import execute_chunk
    from worker.review import record_reviews

    url, job_id = store
    outcome = record_reviews([
        {"job_id": job_id, "external_id": "W-1", "variant_no": 2, "decision": "edited", "edited_text": GOOD_EDIT},
        {"job_id": job_id, "external_id": "W-1", "variant_no": 1, "decision": "rejected", "reason": "tone"},
        {"job_id": job_id, "external_id": "B-2", "variant_no": 3, "decision": "approved"},
    ], reviewer="li.na")
    assert outcome.recorded == 3
    before = rows(url, "SELECT * FROM copy_approved_variants ORDER BY item_no")
    assert [(r["external_id"], r["variant_no"]) for r in before] == [("W-1", 2), ("B-2", 3)]

    # the chunk's message delivered again: the done chunk is not run twice, nothing moves
    settings = get_settings()
    rt = runtime.current()
    engine = make_engine(url)
    with session_scope(engine) as s:
        chunks = job_chunks(s, job_id)
    for chunk_no in chunks:
        execute_chunk(rt, settings, lambda: rt.generator(settings), job_id, chunk_no)
    assert rows(url, "SELECT * FROM copy_approved_variants ORDER BY item_no") == before

    # the first chunk's copy thrown away and generated again (another seed): the decisions stay
    # with their variants' stable identity, and the approved view follows them
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM variants WHERE job_item_id IN "
                          "(SELECT id FROM job_items WHERE job_id = :j AND chunk_no = 0)"), {"j": job_id})
        conn.execute(text("UPDATE chunks SET status = 'pending', attempts = 0 WHERE job_id = :j AND chunk_no = 0"),
                     {"j": job_id})
        conn.execute(text("UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = :j"), {"j": job_id})
    engine.dispose()
    assert main(["reconcile"]) == 0
    capsys.readouterr()
    assert len(rows(url, "SELECT 1 FROM copy_job_variants WHERE job_id = :j", j=job_id)) == len(PRODUCTS) * VARIANTS
    assert len(decision_rows(url)) == 3
    after = rows(url, "SELECT * FROM copy_approved_variants ORDER BY item_no")
    assert [(r["external_id"], r["variant_no"], r["decision"]) for r in after] == \
        [("W-1", 2, "edited"), ("B-2", 3, "approved")]
    assert after[0]["text"] == GOOD_EDIT
    assert main(["review", "status", job_id, "--json"]) == 0
    assert '"edited": 1' in capsys.readouterr().out


# -- copy_approved_variants on both databases ---------------------------------------------------------


def _variants_by_hand(url: str) -> tuple[str, dict[str, int]]:
    """A job of four products x 3 variants written through db/ (no model): (job id, item ids)."""
    from db.chunks import claim_chunk, mark_chunk_done
    from db.engine import make_engine, session_scope, upgrade
    from db.jobs import create_job
    from db.variants import upsert_variants

    upgrade(url)
    engine = make_engine(url)
    products = [{"external_id": e, "title": f"product {e}"} for e in ("A", "B", "C", "D")]
    with session_scope(engine) as s:
        job_id, _ = create_job(s, products=products, settings={"variants": 3}, model_version=None, chunk_size=10,
                               queue="batch", campaign="spring")
        items = claim_chunk(s, job_id, 0, lease_seconds=60, max_attempts=3)
        upsert_variants(s, [{"job_item_id": i["id"], "variant_no": v, "text": f"{i['external_id']} copy {v}",
                             "rank": v, "score": 1.0 - v / 10, "flags": [], "passed": True, "model_version": "m"}
                            for i in items for v in (1, 2, 3)])
        mark_chunk_done(s, job_id, 0)
    engine.dispose()
    return job_id, {i["external_id"]: i["id"] for i in items}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def test_copy_approved_variants_gives_each_product_its_edited_or_best_approved_copy(any_url):
    from db.engine import make_engine, session_scope
    from db.reviews import record_decisions

    job_id, ids = _variants_by_hand(any_url)

    def d(product, variant_no, decision, edited_text=None, reviewer="li.na"):
        return {"job_item_id": ids[product], "variant_no": variant_no, "decision": decision,
                "edited_text": edited_text, "reason": None, "reviewer": reviewer, "source": "test"}

    engine = make_engine(any_url)
    with session_scope(engine) as s:
        record_decisions(s, [
            d("A", 1, "approved"), d("A", 3, "edited", "A 改写"),  # an edit wins over a better-ranked approval
            d("B", 1, "approved"), d("B", 2, "approved"),
            d("C", 1, "rejected"), d("C", 2, "rejected"),  # nothing to publish
            d("D", 3, "approved"), d("D", 2, "approved"),  # the best ranked of two approvals
        ])
    with session_scope(engine) as s:
        record_decisions(s, [d("B", 1, "rejected", reviewer="wang.fang")])  # later: the latest counts
    engine.dispose()
    found = rows(any_url, "SELECT * FROM copy_approved_variants WHERE job_id = :j ORDER BY item_no", j=job_id)
    assert [(r["external_id"], r["variant_no"], r["decision"], r["text"], r["generated_text"]) for r in found] == [
        ("A", 3, "edited", "A 改写", "A copy 3"),
        ("B", 2, "approved", "B copy 2", "B copy 2"),
        ("D", 2, "approved", "D copy 2", "D copy 2"),
    ]
    assert all(r["campaign"] == "spring" and r["reviewer"] == "li.na" and r["decided_at"] is not None for r in found)
    best = rows(any_url, "SELECT external_id, variant_no FROM copy_best_variants WHERE job_id = :j "
                         "ORDER BY item_no", j=job_id)
    assert [(r["external_id"], r["variant_no"]) for r in best] == [("A", 1), ("B", 1), ("C", 1), ("D", 1)]


def test_a_decision_the_schema_forbids_is_refused_by_the_database_too(sqlite_url):
    from sqlalchemy.exc import IntegrityError

    from db.engine import make_engine, session_scope
    from db.reviews import record_decisions

    _, ids = _variants_by_hand(sqlite_url)
    engine = make_engine(sqlite_url)
    for bad in ({"decision": "edited", "edited_text": None}, {"decision": "approved", "edited_text": "x"},
                {"decision": "maybe"}, {"decision": "rejected", "reason": "ugly"}):
        with pytest.raises(IntegrityError), session_scope(engine) as s:
            record_decisions(s, [{"job_item_id": ids["A"], "variant_no": 1, "reviewer": "x", "reason": None,
                                  "edited_text": None, **bad}])
    engine.dispose()


@pytest.mark.integration
def test_the_campaign_role_reads_copy_approved_variants_after_the_migration_and_from_the_script(pg_url):
    from alembic import command
    from helpers_worker import require_binary
    from sqlalchemy.engine import make_url

    from db.engine import alembic_config, make_engine, upgrade

    command.upgrade(alembic_config(pg_url), "0002")
    owner = make_engine(pg_url)
    early, late = f"campaign_t_{uuid.uuid4().hex[:8]}", f"campaign_t_{uuid.uuid4().hex[:8]}"
    with owner.begin() as conn:  # a campaign role from before this migration: it reads copy_best_variants
        conn.execute(text(f'CREATE ROLE "{early}" LOGIN'))
        conn.execute(text(f'GRANT SELECT ON copy_best_variants TO "{early}"'))
    try:
        upgrade(pg_url)
        psql = require_binary("psql")
        libpq_url = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run([psql, libpq_url, "-v", f"role={late}", "-f", str(REPO / "scripts/campaign_role.sql")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        for role in (early, late):
            reader = create_engine(make_url(pg_url).set(username=role))
            try:
                with reader.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM copy_approved_variants")).scalar_one() == 0
            finally:
                reader.dispose()
    finally:
        with owner.begin() as conn:
            for role in (early, late):
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()


# -- by task name, from a client that does not import copygen -----------------------------------------


@pytest.mark.integration
def test_a_plain_celery_client_records_decisions_by_task_name(pg_url, redis_url, checkpoint, tmp_path):
    from celery import Celery
    from helpers_worker import copygen_env, wait_until, worker_process

    job_id, _ = _variants_by_hand(pg_url)
    env = copygen_env(database_url=pg_url, broker_url=redis_url, checkpoint=checkpoint, threads=1)
    worker = worker_process(env, tmp_path / "worker.log").start(timeout=300)
    client = Celery(broker=redis_url)  # no copygen config: JSON, Celery's default queue
    try:
        def send(**payload):
            client.send_task("copygen.record_review", kwargs=payload)

        def decisions(key_prefix):
            return rows(pg_url, "SELECT variant_no, decision, edited_text, reviewer, source FROM review_decisions "
                                "WHERE idempotency_key LIKE :k ORDER BY id", k=f"{key_prefix}%")

        batch = [
            {"job_id": job_id, "external_id": "A", "variant_no": 1, "decision": "approved"},
            {"job_id": job_id, "external_id": "A", "variant_no": 2, "decision": "edited", "edited_text": "A 改写",
             "reviewer": "wang.fang"},
            {"job_id": job_id, "external_id": "B", "variant_no": 1, "decision": "edited",
             "edited_text": "国家级好裙"},  # an Advertising Law term: refused, the others recorded
            {"job_id": job_id, "external_id": "C", "variant_no": 9, "decision": "rejected"},  # no such variant
        ]
        send(decisions=batch, reviewer="li.na", idempotency_key="crm-7", source="crm")
        found = wait_until(lambda: len(decisions("crm-7:")) == 2 and decisions("crm-7:"), 120, "the two decisions")
        assert found == [
            {"variant_no": 1, "decision": "approved", "edited_text": None, "reviewer": "li.na", "source": "task:crm"},
            {"variant_no": 2, "decision": "edited", "edited_text": "A 改写", "reviewer": "wang.fang",
             "source": "task:crm"}]
        wait_until(lambda: "decisions[3].variant_no refused" in worker.log(), 60, "the refusals in the log")
        assert "decisions[2].edited_text refused: the edit breaks the Advertising Law: 国家级" in worker.log()

        send(decisions=batch, reviewer="li.na", idempotency_key="crm-7", source="crm")  # sent again
        send(decisions=[{"job_id": job_id, "external_id": "D", "variant_no": 1, "decision": "rejected",
                         "reason": "length"}], reviewer="li.na")  # no key: the task id stands in
        send(decisions="not a list", unknown=1)  # wrong as a whole
        wait_until(lambda: "decisions: 'not a list' is not of type 'array'" in worker.log(), 120,
                   "the payload refused as a whole")
        assert "('unknown' was unexpected)" in worker.log()
        # one worker, prefetch 1: the messages ran in order, so the duplicate has been handled
        assert len(decisions("crm-7:")) == 2
        assert [r["decision"] for r in decisions("task:")] == ["rejected"]
        assert worker.alive()
    finally:
        client.close()
        worker.stop()


# -- feedback: training pairs and the score's weights ---------------------------------------------------


def _decide_some(job_id: str) -> None:
    from worker.review import record_reviews

    outcome = record_reviews([
        {"job_id": job_id, "external_id": "W-1", "variant_no": 1, "decision": "approved"},
        {"job_id": job_id, "external_id": "W-1", "variant_no": 2, "decision": "edited",
         "edited_text": "纯棉白色衬衫，简约百搭，客服电话13812345678。"},  # personal data: redacted before training
        {"job_id": job_id, "external_id": "W-1", "variant_no": 3, "decision": "rejected", "reason": "tone"},
        {"job_id": job_id, "external_id": "B-2", "variant_no": 1, "decision": "rejected", "reason": "wrong_fact"},
        {"job_id": job_id, "external_id": "B-2", "variant_no": 2, "decision": "approved"},
        {"job_id": job_id, "external_id": "P-3", "variant_no": 1, "decision": "approved"},
        {"job_id": job_id, "external_id": "P-3", "variant_no": 2, "decision": "rejected"},
    ], reviewer="li.na")
    assert outcome.recorded == 7, outcome.refused


def test_train_reads_approved_and_edited_copy_from_the_copy_store_with_its_provenance(store, checkpoint, tmp_path,
                                                                                      capsys):
    import json

    from trainer.checkpoint import load_manifest

    url, job_id = store
    _decide_some(job_id)
    out = tmp_path / "next"
    assert main(["train", "--data", url, "--campaign", "spring", "--out", str(out), "--base", str(checkpoint),
                 "--epochs", "2", "--val-fraction", "0.3", "--quiet"]) == 0
    assert "4 reviewed pairs (approved or edited), 3 rejected left out" in capsys.readouterr().err
    manifest = load_manifest(out)
    [source] = manifest["data"]["sources"]
    assert source["kind"] == "copy_store" and source["campaign"] == "spring" and source["pairs"] == 4
    assert source["left_out"] == {"rejected": 3}
    assert sorted((p["origin"].split("#")[1], p["decision"]) for p in source["from"]) == [
        (f"job={job_id}&product=B-2&variant=2", "approved"), (f"job={job_id}&product=P-3&variant=1", "approved"),
        (f"job={job_id}&product=W-1&variant=1", "approved"), (f"job={job_id}&product=W-1&variant=2", "edited")]
    assert all(p["reviewer"] == "li.na" and p["decided_at"] for p in source["from"])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    prepared = report["data"]["pairs"]["prepared"]
    assert prepared["read"] == 4 and prepared["redacted"]["phone"] == 1
    counts = manifest["data"]["counts"]
    assert counts["train_pairs"] + counts["val_pairs"] == prepared["kept"]

    # a campaign with no reviewed copy is named, not trained on
    assert main(["train", "--data", url, "--campaign", "summer", "--out", str(tmp_path / "none")]) == 2
    assert "no approved or edited variants (campaign summer" in capsys.readouterr().err


def test_tune_score_keeps_the_defaults_on_too_few_decisions_and_writes_weights_the_worker_loads(store, tmp_path,
                                                                                                capsys):
    from worker import selection

    _, job_id = store
    _decide_some(job_id)
    weights = tmp_path / "weights.json"
    assert main(["tune-score", "--out", str(weights)]) == 1
    out = capsys.readouterr().out
    assert "the fit needs 60 of each (10 per weight for 6 weights); the default weights stay" in out
    assert not weights.exists()

    # the whole path on this store's few decisions: fluency measured again with the job's own model
    assert main(["tune-score", "--out", str(weights), "--min-per-class", "1", "--campaign", "spring"]) == 0
    out = capsys.readouterr().out
    assert "weights: coverage" in out and "held out:" in out and f"COPYGEN_SCORE_WEIGHTS={weights.resolve()}" in out
    try:
        loaded = selection.use_weights(str(weights))
        assert set(loaded) == set(selection.DEFAULT_WEIGHTS) and sum(loaded.values()) <= 1.0
        assert selection.WEIGHTS == loaded
    finally:
        assert selection.use_weights(None) == selection.DEFAULT_WEIGHTS
    assert selection.WEIGHTS == selection.DEFAULT_WEIGHTS
