"""copygen train and copygen eval as a user runs them, on the committed AdvertiseGen sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from copygen.cli import main
from trainer.checkpoint import load_manifest

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "advertisegen_sample.jsonl"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "demo"
    assert main(["train", "--data", str(SAMPLE), "--out", str(out), "--preset", "demo", "--epochs", "0.25",
                 "--ngram-order", "5", "--mention-weight", "3", "--quiet"]) == 0
    return out


def test_train_writes_a_checkpoint_with_manifest_report_and_loss_curve(trained):
    manifest = load_manifest(trained)
    assert manifest["base"] == "scratch:demo"
    assert len(manifest["data"]["fingerprint"]) == 64
    low, high = manifest["prompt"]["length_edges"]
    assert 50 < low < high < 250
    report = json.loads((trained / "report.json").read_text(encoding="utf-8"))
    read = report["data"]["pairs"]["read"]
    assert read["bad_by_reason"] == {"brand_placeholder": 22}  # the 22 BRAND rows of the sample
    assert read["pairs"] == 300 - 22
    prepared = report["data"]["pairs"]["prepared"]
    assert prepared["read"] == 278 and prepared["kept"] == 278 - sum(prepared["dropped"].values())
    counts = manifest["data"]["counts"]
    assert counts["train_pairs"] + counts["val_pairs"] == prepared["kept"] and counts["val_pairs"] > 0
    assert set(report["data"]["pairs"]["prepared"]["redacted"]) >= {"phone", "email", "id_card", "bank_card"}
    assert (trained / "loss.png").read_bytes()[:4] == b"\x89PNG"
    # the n-gram model of the training copy, with the network's share chosen on validation (trainer.ngram)
    assert manifest["ngram"]["order"] == 5 and manifest["ngram"]["weight"] in (0.05 * i for i in range(1, 20))
    assert (trained / "ngram.npz").is_file() and report["ngram"] == manifest["ngram"]
    assert not (trained.parent / f".{trained.name}.work").exists()  # the working state is cleaned up
    assert manifest["training"]["mention_weight"] == 3.0  # trained weighing the product's own values


def test_eval_scores_the_validation_split_against_the_retrieval_baseline(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(trained), "--data", str(SAMPLE), "--out", str(out), "--limit", "6", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "validation split" in table and "retrieval baseline" in table and "R-L" in table
    assert "mixed with the n-gram model" in table
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6 and all({"content", "reference", "prediction"} <= set(line) for line in lines)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["examples"] == 6 and metrics["sampling"] == {"temperature": 0.95, "top_p": 0.7}
    for system in ("model", "retrieval baseline", "worker choice (k=3)"):
        assert {"rouge-1", "rouge-2", "rouge-l", "bleu-4"} <= set(metrics["results"][system])
    # what a campaign tool would publish: the worker's rank-1 of 3, and whether it passed every check
    chosen = metrics["results"]["worker choice (k=3)"]
    assert 0 <= chosen["passing_share"] <= 1 and {"coverage", "contradiction_rate"} <= set(chosen)
    assert all(isinstance(line["worker_choice"], str) and isinstance(line["worker_choice_passed"], bool)
               for line in lines)
    assert "worker choice (k=3)" in table and "false-positive rate" in table
    # validation rows are never training rows
    manifest = load_manifest(trained)
    from trainer.evaluate import eval_split

    train, rows, _ = eval_split(manifest, [SAMPLE])
    assert not {p.copy for p in train} & {p.copy for p in rows}


def test_eval_from_another_directory_still_scores_only_the_validation_split(trained, tmp_path, monkeypatch):
    from trainer.evaluate import eval_split

    manifest = load_manifest(trained)
    assert manifest["data"]["paths"] == [str(SAMPLE)]  # absolute, whatever the directory training ran in
    monkeypatch.chdir(tmp_path)
    train, rows, split = eval_split(manifest, [Path(os.path.relpath(SAMPLE, tmp_path))])  # as typed there
    assert split == "validation split of the training data"
    assert rows and not {p.copy for p in train} & {p.copy for p in rows}


def test_training_can_continue_from_a_local_model_with_lora(trained, tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    assert main(["train", "--data", str(SAMPLE), "--out", str(out), "--base", str(trained), "--lora",
                 "--epochs", "0.1", "--quiet"]) == 0
    manifest = load_manifest(out)
    assert manifest["base"].startswith("copygen:demo-") and manifest["training"]["lora"] is True
    assert not any("lora" in name for name in _weight_names(out))  # adapters merged into plain weights


def _weight_names(directory: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="pt") as fh:
        return list(fh.keys())


def test_train_names_a_missing_data_file(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize("weight", ["0", "-1", "inf", "nan"])
def test_train_refuses_a_mention_weight_that_is_no_positive_number(tmp_path, capsys, weight):
    assert main(["train", "--data", str(SAMPLE), "--out", str(tmp_path / "x"), f"--mention-weight={weight}"]) == 2
    assert "--mention-weight" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_names_a_missing_column_of_a_merchant_table(tmp_path, capsys):
    table = tmp_path / "copy.csv"
    table.write_text("title,copy\n白色衬衫,简约百搭的白色衬衫。\n", encoding="utf-8")
    assert main(["train", "--data", str(table), "--out", str(tmp_path / "x"), "--input-column", "title",
                 "--output-column", "summary"]) == 2
    err = capsys.readouterr().err
    assert "summary" in err and "copy.csv" in err
