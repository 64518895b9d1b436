"""The copygen command as a user runs it, on the embedded default (SQLite, in-process)."""

from __future__ import annotations

import csv
import json

import pytest

from copygen.cli import main
from copygen.settings import get_settings
from trainer.testing import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("cli") / "tiny")


@pytest.fixture
def embedded(tmp_path, monkeypatch, checkpoint):
    monkeypatch.setenv("COPYGEN_DATABASE_URL", f"sqlite:///{tmp_path / 'copy.db'}")
    monkeypatch.setenv("COPYGEN_BROKER_URL", "memory://")
    monkeypatch.setenv("COPYGEN_CHECKPOINT", str(checkpoint))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _catalogue(path, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "title", "attributes"])
        writer.writerows(rows)
    return path


def test_enqueue_status_and_export_round_trip_on_the_embedded_default(embedded, capsys):
    catalogue = _catalogue(embedded / "c.csv", [
        ("A-1", "白色棉衬衫", "类型#上衣*颜色#白色*材质#棉"),
        ("A-2", "黑色复古连衣裙", "类型#裙*颜色#黑色*风格#复古"),
        ("A-2", "duplicate id", "类型#裙"),
        ("A-3", "坏属性", "类型#裙*颜色"),
    ])
    assert main(["enqueue", str(catalogue), "--variants", "2", "--seed", "1", "--wait", "--quiet"]) == 0
    out, err = capsys.readouterr()
    job = out.strip()
    assert len(job) == 36
    assert "row 3" in err and "row 4" in err and "external_id" in err and "attributes" in err

    assert main(["status", job, "--json"]) == 0
    progress = json.loads(capsys.readouterr().out)
    assert progress["status"] == "done" and progress["items"] == 2 and progress["variants"] == 4
    assert progress["rejected"] == 2

    for fmt in ("csv", "jsonl", "xlsx"):
        assert main(["export", job, "--format", fmt, "--out", str(embedded / f"copy.{fmt}")]) == 0
    with (embedded / "copy.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["external_id"], r["rank"]) for r in rows] == [("A-1", "1"), ("A-1", "2"), ("A-2", "1"), ("A-2", "2")]
    assert all(r["text"] for r in rows)
    lines = (embedded / "copy.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == [r["text"] for r in rows]
    import pandas as pd

    assert list(pd.read_excel(embedded / "copy.xlsx")["text"]) == [r["text"] for r in rows]


def test_the_same_idempotency_key_returns_the_same_job(embedded, capsys):
    catalogue = _catalogue(embedded / "c.csv", [("B-1", "白色衬衫", "类型#上衣*颜色#白色")])
    args = ["enqueue", str(catalogue), "--variants", "1", "--idempotency-key", "promo-1", "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out.strip()
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == first


def test_strict_mode_rejects_a_file_with_any_bad_row(embedded, capsys):
    catalogue = _catalogue(embedded / "c.csv", [("C-1", "衬衫", "类型#上衣"), ("", "no id", "类型#上衣")])
    assert main(["enqueue", str(catalogue), "--strict", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and "external_id" in err


def test_a_non_utf8_catalogue_fails_with_one_clear_line(embedded, capsys):
    gbk = embedded / "gbk.csv"
    gbk.write_bytes("external_id,title\nX-1,白色衬衫\n".encode("gbk"))
    assert main(["enqueue", str(gbk)]) == 2
    err = capsys.readouterr().err
    assert "UTF-8" in err and "gbk.csv" in err


def test_an_unknown_job_is_reported(embedded, capsys):
    assert main(["status", "00000000-0000-0000-0000-000000000000"]) == 2
    assert "no job" in capsys.readouterr().err


def test_a_worker_refuses_a_directory_that_is_not_a_checkpoint(embedded, capsys, monkeypatch):
    monkeypatch.setenv("COPYGEN_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    assert main(["worker", "--checkpoint", str(embedded)]) == 2
    err = capsys.readouterr().err.strip()
    assert "copygen.json is missing" in err and "\n" not in err


def test_generate_prints_the_variants(checkpoint, capsys):
    assert main(["generate", str(checkpoint), "--attributes", "类型#上衣*颜色#白色", "--opening", "新品上市，",
                 "--variants", "2", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split(". ", 1)[1].startswith("新品上市，") for line in lines)


def test_generate_names_a_bad_attribute_string(checkpoint, capsys):
    assert main(["generate", str(checkpoint), "--attributes", "类型#上衣*颜色"]) == 2
    assert "--attributes" in capsys.readouterr().err
