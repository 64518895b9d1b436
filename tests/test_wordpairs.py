"""The pairs of neighbouring words of the training copy (trainer.wordpairs), and how a checkpoint keeps them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer import wordpairs
from trainer.checkpoint import CheckpointError
from trainer.generation.generator import load_word_pairs
from trainer.testing import tiny_checkpoint

COPY = ["修饰颈部线条，穿出优雅的气质。", "条纹的设计，清新又减龄！"]


def test_a_clause_of_the_training_copy_is_seen_and_a_splice_of_two_is_not():
    pairs = wordpairs.WordPairs.count(COPY)
    assert pairs.unseen("修饰颈部线条") == [] and pairs.unseen("条纹的设计") == []
    # 线条 and 条纹 run together: jieba reads 颈部/线/条纹
    assert pairs.unseen("修饰颈部线条纹") == [("颈部", "线"), ("线", "条纹"), ("条纹", wordpairs.EDGE)]
    # a clause's start and end are words too: the same words in another place are unseen
    assert pairs.unseen("的设计条纹") == [(wordpairs.EDGE, "的"), ("设计", "条纹"), ("条纹", wordpairs.EDGE)]


def test_clauses_end_at_every_clause_mark_and_nothing_is_read_across_them():
    assert wordpairs.clauses("这款衬衫，简约百搭。好看！") == ["这款衬衫", "简约百搭", "好看"]
    pairs = wordpairs.WordPairs.count(COPY)
    assert pairs.unseen("线条") == [(wordpairs.EDGE, "线条")]  # 线条 ends a clause, never begins one


def test_a_clause_ends_a_sentence_where_a_full_stop_follows_it_or_nothing_does():
    assert wordpairs.ended_clauses("这款衬衫，简约大方。腰部的设计；显瘦！好看？百搭") == [
        ("这款衬衫", False), ("简约大方", True), ("腰部的设计", False), ("显瘦", True), ("好看", True), ("百搭", True)]
    assert wordpairs.ended_clauses("简约大方，，") == [("简约大方", True)]  # the copy's last
    assert wordpairs.ended_clauses("") == []


def test_word_pairs_survive_saving_and_a_damaged_file_is_refused(tmp_path):
    pairs = wordpairs.WordPairs.count(COPY)
    pairs.save(tmp_path / wordpairs.FILE)
    again = load_word_pairs(tmp_path, {"word_pairs": {"pairs": len(pairs)}})
    assert np.array_equal(again.hashes, pairs.hashes) and again.unseen("条纹的设计") == []
    assert load_word_pairs(tmp_path, {}) is None  # a checkpoint saved before word pairs
    np.save(tmp_path / wordpairs.FILE, np.zeros(3, dtype=np.float32))
    with pytest.raises(CheckpointError, match="word_pairs.npy"):
        load_word_pairs(tmp_path, {"word_pairs": {"pairs": 3}})
    (tmp_path / wordpairs.FILE).unlink()
    with pytest.raises(CheckpointError, match="missing or unreadable"):
        load_word_pairs(tmp_path, {"word_pairs": {"pairs": 3}})


def test_training_saves_the_word_pairs_of_its_copy_in_the_checkpoint(tmp_path):
    out = tiny_checkpoint(tmp_path / "tiny", steps=2)
    manifest = json.loads((out / "copygen.json").read_text(encoding="utf-8"))
    pairs = load_word_pairs(out, manifest)
    assert manifest["word_pairs"]["pairs"] == len(pairs) > 0
    assert pairs.unseen("这款白色上衣采用纯棉面料") == []  # a clause of trainer.testing's copy
    assert pairs.unseen("这款白色面料采用纯棉上衣") != []
