"""The phrasebook: a pull toward n-grams the training copy has (trainer/generation/phrasebook.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from trainer.checkpoint import PHRASEBOOK_FILE
from trainer.generation import Generator, Request
from trainer.generation.phrasebook import _Phrasebook
from trainer.testing import tiny_checkpoint, tiny_pairs

SOURCE = "类型#裙*材质#雪纺*图案#碎花*裙型#a字"
SAMPLE = {"seed": 3, "max_new_tokens": 40, "temperature": 1.6, "top_p": 1.0}  # hot: strays off the copy


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=30)


@pytest.fixture(scope="module")
def engine(checkpoint):
    return Generator.load(checkpoint, device="cpu", batch_size=4, dtype="float32")


def grams(texts: list[str], n: int) -> set[str]:
    return {t[i:i + n] for t in texts for i in range(len(t) - n + 1)}


def unattested(texts: list[str], corpus: list[str], n: int) -> set[str]:
    return grams(texts, n) - grams(corpus, n)


def test_a_checkpoint_keeps_its_training_copy_as_the_phrasebook(checkpoint):
    kept = (checkpoint / PHRASEBOOK_FILE).read_text(encoding="utf-8").splitlines()
    assert kept == [p.copy for p in tiny_pairs()]


def test_a_prohibitive_penalty_writes_only_n_grams_of_the_training_copy_and_zero_changes_nothing(engine):
    corpus = [p.copy for p in tiny_pairs()]
    request = Request(SOURCE, variants=4)
    free = engine.generate([request], **SAMPLE)[0]
    assert unattested(free, corpus, 4), free  # the hot tiny model strays from its copy
    assert engine.generate([request], attested=(4, 0.0), **SAMPLE)[0] == free
    held = engine.generate([request], attested=(4, 1e4), **SAMPLE)[0]
    assert held != free and not unattested(held, corpus, 4), held
    # every copy starts as some training copy starts (the start marker is part of the n-grams)
    assert all(any(c.startswith(t[:3]) for c in corpus) for t in held), held


def test_the_phrasebook_reads_a_forced_opening_as_copy_already_written(engine):
    corpus = [p.copy for p in tiny_pairs()]
    opened = Request(SOURCE, variants=4, opening="碎花雪")
    held = engine.generate([opened], attested=(4, 1e4), **SAMPLE)[0]
    assert all(t.startswith("碎花雪纺") for t in held), held  # 花雪 is followed by 纺 alone
    assert not unattested(held, corpus, 4), held


def test_blocking_wins_over_the_phrasebook(engine):
    banned = Request(SOURCE, variants=4, banned=("雪纺",))
    held = engine.generate([banned], attested=(4, 1e4), **SAMPLE)[0]
    assert not [t for t in held if "雪纺" in t], held


def test_a_checkpoint_without_a_phrasebook_decodes_as_before(checkpoint, tmp_path, caplog):
    old = shutil.copytree(checkpoint, tmp_path / "old")
    (old / PHRASEBOOK_FILE).unlink()
    engine = Generator.load(old, device="cpu", batch_size=4, dtype="float32")
    request = Request(SOURCE, variants=2)
    assert engine.generate([request], attested=(4, 1e4), **SAMPLE) == engine.generate([request], **SAMPLE)
    assert "no phrasebook" in caplog.text


def test_followers_back_off_to_the_longest_context_the_corpus_has():
    eos = 9
    book = _Phrasebook([[1, 2, 3, 4], [1, 2, 5], [6, 2, 3]], order=3, vocab=10, eos_id=eos)
    lead = np.array([book.lead([]), book.lead([6]), book.lead([]), book.lead([])])
    out = np.zeros((4, 5), dtype=np.int64)
    out[0, :2], out[1, :1], out[2, :1], out[3, :2] = [1, 2], [2], [7], [5, 2]
    done = np.array([2, 1, 1, 2])
    rows, tokens = book.followers(lead, out, done, np.arange(4))
    following = {r: sorted(tokens[rows == r].tolist()) for r in range(4)}
    assert following[0] == [3, 5]  # after 1 2
    assert following[1] == [3]  # after the opening's 6, then 2
    assert following[2] == []  # 7 never occurs: no pull at all
    assert following[3] == [3, 5]  # 5 2 never occurs: backs off to after 2
    start = book.followers(lead, out, np.zeros(4, dtype=np.int64), np.array([0]))[1]
    assert sorted(start.tolist()) == [1, 6]  # how copy starts
    assert book.followers(lead, np.array([[1, 2, 4, 0, 0]] * 4), np.array([3] * 4), np.array([0]))[1].tolist() == [eos]
    logits = torch.zeros(4, 10)
    book.penalize(logits, lead, out, done, np.array([True, True, True, False]), 5.0)
    assert logits[0].tolist() == [-5, -5, -5, 0, -5, 0, -5, -5, -5, -5]
    assert logits[2].tolist() == [0] * 10 and logits[3].tolist() == [0] * 10  # unknown context; not live


def test_long_contexts_over_a_large_vocabulary_are_told_apart():
    big = 150_000
    book = _Phrasebook([[big - 1, 7, big - 2, 8, 9], [big - 1, 7, big - 3, 8, 10]], order=5, vocab=big, eos_id=0)
    lead = np.array([book.lead([]), book.lead([])])
    out = np.array([[big - 1, 7, big - 2, 8], [big - 1, 7, big - 3, 8]])
    rows, tokens = book.followers(lead, out, np.array([4, 4]), np.arange(2))
    assert tokens[rows == 0].tolist() == [9] and tokens[rows == 1].tolist() == [10]
