"""The COPY write paths on PostgreSQL: job items at submission, variants per chunk (db.bulk)."""

from __future__ import annotations

import pytest

from db.chunks import claim_chunk
from db.engine import make_engine, session_scope, upgrade
from db.jobs import create_job
from db.variants import job_variants, upsert_variants

pytestmark = pytest.mark.integration

AWKWARD = "制表\t换行\n反斜杠\\N 引号\"'，全角！　空格 \\. 结束"


@pytest.fixture
def pg_engine(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def new_job(engine, n: int = 4) -> tuple[str, list[dict]]:
    products = [{"external_id": f"sku-{i}", "title": AWKWARD, "category": "上衣",
                 "attributes": {"颜色": ["红色", "白\t色"], "图案": ["复古", "线条"]}, "description": AWKWARD}
                for i in range(n)]
    with session_scope(engine) as s:
        job_id, _ = create_job(s, products=products, settings={}, model_version=None, chunk_size=n, queue="batch")
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, 0, lease_seconds=60, max_attempts=3)
    return job_id, items


def rows(items, k: int = 2, text: str = AWKWARD) -> list[dict]:
    return [{"job_item_id": item["id"], "variant_no": v, "text": text, "rank": v + 1, "score": 0.5,
             "flags": ["广告法:最", "长度"], "passed": False, "model_version": "m", "regenerations": 1}
            for item in items for v in range(k)]


def test_items_written_by_copy_keep_their_text_and_attribute_order(pg_engine):
    _, items = new_job(pg_engine)
    assert [i["external_id"] for i in items] == ["sku-0", "sku-1", "sku-2", "sku-3"]
    assert items[0]["title"] == AWKWARD and items[0]["description"] == AWKWARD
    assert list(items[0]["attributes"].items()) == [("颜色", ["红色", "白\t色"]), ("图案", ["复古", "线条"])]


def test_variants_written_by_copy_round_trip_and_a_redelivery_writes_nothing(pg_engine):
    job_id, items = new_job(pg_engine)
    with session_scope(pg_engine) as s:
        assert upsert_variants(s, rows(items)) == 8
    with session_scope(pg_engine) as s:
        assert upsert_variants(s, rows(items, text="second delivery")) == 0
        stored = job_variants(s, job_id)
    assert len(stored) == 8 and {v["text"] for v in stored} == {AWKWARD}
    assert stored[0]["flags"] == ["广告法:最", "长度"] and stored[0]["passed"] is False
    assert stored[0]["regenerations"] == 1 and stored[0]["model_version"] == "m"


def test_two_writes_in_one_transaction_and_a_rolled_back_one_leave_no_staged_rows(pg_engine):
    job_id, items = new_job(pg_engine)
    with session_scope(pg_engine) as s:
        assert upsert_variants(s, rows(items[:2])) == 4
        assert upsert_variants(s, rows(items[2:])) == 4  # the staging table was emptied by the first
    with pytest.raises(RuntimeError), session_scope(pg_engine) as s:
        upsert_variants(s, [{**r, "variant_no": 9} for r in rows(items)])
        raise RuntimeError("the chunk's transaction fails after the write")
    with session_scope(pg_engine) as s:
        assert upsert_variants(s, [{**r, "variant_no": 5} for r in rows(items[:1], k=1)]) == 1
        assert len(job_variants(s, job_id)) == 9  # nothing of the rolled back write, nothing twice
