"""Oversized input: 50 MB catalogue files, a 1 MB attribute value, ids of 1,000 characters.

The rest of the bad-input list (empty, header only, wrong delimiter, GBK, BOM, CRLF, binary,
control and zero-width characters, emoji, SQL-looking text, HTML, duplicate ids, nested JSON, and
the property-based tests) is in test_catalogue.py and test_catalogue_properties.py; payloads sent
by task name to a real worker are in test_security.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from copygen.catalogue import CatalogueError, read_catalogue

FIFTY_MB = 50_000_000
# A catalogue of 50 MB with long descriptions (~9,400 rows): read in a child process whose peak
# memory and time are measured. (50 MB of short rows, ~320,000 of them, takes ~17 s and ~700 MB on
# a loaded 2-core machine: not a unit test.)
# Peak memory is VmHWM of the child's own address space: ru_maxrss would count the pytest process
# it was forked from, which Linux carries over the exec.
MEASURE = """
import json, re, sys, time
from pathlib import Path
from copygen.catalogue import read_catalogue
started = time.monotonic()
products, errors = read_catalogue(sys.argv[1])
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"products": len(products), "errors": len(errors), "seconds": time.monotonic() - started,
                  "peak_mb": peak_kb / 1024}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads peak memory from /proc (Linux)")
def test_a_50_mb_catalogue_is_accepted_in_bounded_time_and_memory(tmp_path):
    path = tmp_path / "big.csv"
    description = ("这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦。" * 70)[:1900]
    rows = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("external_id,title,category,attributes,description\n")
        while f.tell() < FIFTY_MB:
            f.write(f"SKU-{rows:06d},白色纯棉上衣,上衣,类型#上衣*颜色#白色*材质#棉,{description}\n")
            rows += 1
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=300,
                          check=True)
    measured = json.loads(done.stdout)
    assert (measured["products"], measured["errors"]) == (rows, 0)
    assert measured["seconds"] < 60
    assert measured["peak_mb"] < 4 * FIFTY_MB / 2**20 + 150  # a few times the file, plus the interpreter


def test_a_50_mb_line_is_refused_quickly_naming_the_line_in_csv_and_the_row_in_json_lines(tmp_path):
    csv_path = tmp_path / "one-line.csv"
    csv_path.write_text("external_id,title\n" + "x" * FIFTY_MB + "\nB,裙子\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"one-line.csv: line 2: not valid CSV \(field larger than field limit"):
        read_catalogue(csv_path)

    jsonl_path = tmp_path / "one-line.jsonl"
    jsonl_path.write_text(json.dumps({"external_id": "A", "description": "x" * FIFTY_MB}) + "\n"
                          + json.dumps({"external_id": "B", "title": "裙子"}) + "\n", encoding="utf-8")
    products, errors = read_catalogue(jsonl_path)
    assert [p.external_id for p in products] == ["B"]
    assert [(e.row, e.field) for e in errors] == [(1, "description")]
    assert "is 50000000 characters long; the maximum is 2000" in errors[0].reason


def test_a_1_mb_attribute_value_rejects_its_row_and_keeps_the_others(tmp_path):
    path = tmp_path / "attrs.jsonl"
    rows = [{"external_id": "A", "title": "衬衫", "attributes": {"颜色": "红" * 1_000_000}},
            {"external_id": "B", "title": "裙子", "attributes": "颜色#" + "蓝" * 1_000_000},
            {"external_id": "C", "title": "裤子", "attributes": "颜色#黑色"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    products, errors = read_catalogue(path)
    assert [p.external_id for p in products] == ["C"]
    assert [(e.row, e.field) for e in errors] == [(1, "attributes"), (2, "attributes")]
    assert all("the maximum is 4000" in e.reason for e in errors)


def test_a_1_mb_attribute_value_in_a_csv_cell_refuses_the_file_naming_its_line(tmp_path):
    # the csv module's field limit (128 KiB) stops the file at that line; the message says where
    path = tmp_path / "attrs.csv"
    path.write_text("external_id,title,attributes\nA,衬衫,颜色#" + "红" * 1_000_000 + "\nC,裤子,颜色#黑色\n",
                    encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"attrs.csv: line 2: not valid CSV"):
        read_catalogue(path)


def test_ids_of_1000_characters_are_row_errors_naming_row_and_field_in_every_format(tmp_path):
    long_id = "SKU-" + "9" * 996
    (tmp_path / "ids.csv").write_text(f"external_id,title\n{long_id},衬衫\nOK-1,裙子\n", encoding="utf-8")
    (tmp_path / "ids.jsonl").write_text(json.dumps({"external_id": long_id, "title": "衬衫"}) + "\n"
                                        + json.dumps({"external_id": "OK-1", "title": "裙子"}) + "\n", encoding="utf-8")
    for name in ("ids.csv", "ids.jsonl"):
        products, errors = read_catalogue(tmp_path / name)
        assert [p.external_id for p in products] == ["OK-1"], name
        assert [(e.row, e.field) for e in errors] == [(1, "external_id")], name
        assert "is 1000 characters long; the maximum is 200" in errors[0].reason
