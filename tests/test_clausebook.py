"""Decoding from a clause book (trainer.clausebook, trainer/generation/known.py): every clause a row
writes is a clause of the training copy, on a tiny model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from trainer import clausebook, wordpairs
from trainer.checkpoint import CheckpointError
from trainer.generation import Generator, Request, _attention_kernel
from trainer.generation.blocking import _Blocker
from trainer.generation.generator import load_clause_book
from trainer.generation.known import OFF, ROOT, _KnownClauses
from trainer.testing import tiny_checkpoint

SOURCES = [
    "类型#上衣*颜色#白色*材质#棉*风格#简约",
    "类型#裙*颜色#黑色*裙长#连衣裙*风格#复古",
    "类型#裤*版型#宽松*裤型#阔腿裤*材质#牛仔布",
    "类型#上衣*材质#针织*衣样式#毛衣*颜色#灰色",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    _attention_kernel(32, wait=True)
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=30)


@pytest.fixture(scope="module")
def engine(tiny):
    return Generator.load(tiny, device="cpu", batch_size=4, dtype="float32")


def _clauses(texts) -> list[str]:
    return [c for text in texts for c in wordpairs.clauses(text)]


# -- the book ------------------------------------------------------------------------------------

def test_the_book_keeps_the_copys_clauses_and_leaves_out_what_names_another_products_claims():
    common = ["polo领的设计，简约大方。"] * clausebook.LATIN_COPIES
    others = ["100%纯棉面料，简约大方。", "veromoda的经典款，简约大方！", "四合扣点缀裤脚，简约大方。",
              "这款衬衫采用了面料设计，更加的简约大方，穿出了属于自己的时尚个性和优雅的气质感觉，让你无论在哪里都是焦点所在"]
    book = clausebook.ClauseBook.collect([("类型#上衣*衣领型#polo领", copy) for copy in common]
                                         + [("类型#裙", copy) for copy in others])
    assert book.clauses == ["polo领的设计", "简约大方"]  # distinct, in the order first written
    assert book.types == [{"上衣"}, {"上衣", "裙"}]  # the garment types whose copy wrote each
    # a digit, a brand (a Latin word too few copies use), a word one product alone has, a run-on
    assert not {"100%纯棉面料", "veromoda的经典款", "四合扣点缀裤脚"} & set(book.clauses)
    assert not [c for c in book.clauses if len(c) > clausebook.MAX_CHARS]


def test_the_book_survives_saving_and_a_missing_file_is_refused(tmp_path):
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣", "裙")), ("简约的版型百搭又显瘦", ())])
    book.save(tmp_path / clausebook.FILE)
    again = load_clause_book(tmp_path, {"clauses": {"clauses": 2}})
    assert again.clauses == book.clauses and again.types == [{"上衣", "裙"}, set()]
    assert load_clause_book(tmp_path, {}) is None  # a checkpoint saved before clause books
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\n", encoding="utf-8")  # no types
    with pytest.raises(CheckpointError, match="clauses.txt is missing or unreadable"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 2}})
    (tmp_path / clausebook.FILE).unlink()
    with pytest.raises(CheckpointError, match="clauses.txt is missing or unreadable"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 2}})


def test_training_saves_the_clauses_of_its_copy_in_the_checkpoint(tiny):
    manifest = json.loads((tiny / "copygen.json").read_text(encoding="utf-8"))
    book = load_clause_book(tiny, manifest)
    assert manifest["clauses"]["clauses"] == len(book) > 0
    assert {"这款白色上衣采用纯棉面料", "柔软亲肤", "遮肉显腿长"} <= set(book.clauses)  # trainer.testing's copy


# -- the trie ------------------------------------------------------------------------------------

def test_the_trie_allows_what_continues_a_clause_a_mark_where_one_ends_and_the_end_only_after_a_mark():
    marks, eos = [90, 91], 99
    trie = _KnownClauses([[1, 2, 3], [1, 2], [4, 5]], marks, eos)
    allowed = [trie.allowed([])]
    scores = torch.zeros(4, 100)
    states = np.array([ROOT, trie.start([1]), trie.start([1, 2]), trie.start([7])])
    masked, stuck = trie.mask(scores, states, np.zeros(4, dtype=np.int64), allowed, np.ones(4, dtype=bool))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [1, 4, eos]
    assert torch.isfinite(masked[1]).nonzero().ravel().tolist() == [2]
    assert torch.isfinite(masked[2]).nonzero().ravel().tolist() == [3, *marks]  # 1 2 is a clause; 1 2 3 goes on
    assert states[3] == OFF and torch.isfinite(masked[3]).all()  # off the book: free until its next mark
    assert len(stuck) == 0
    assert trie.advance(states, np.array([4, 2, 90, 91])).tolist() == [trie.start([4]), trie.start([1, 2]), ROOT, ROOT]


def test_a_clause_with_a_blocked_phrase_leaves_the_book_for_rows_that_block_it():
    trie = _KnownClauses([[1, 2, 3], [1, 5], [4, 5]], [90], 99)
    blocker = _Blocker({(2,): {3}, (): {4}}, [], 100, "cpu")  # bans 2 3, and 4 alone
    node_ok, end_ok = trie.allowed([trie.passing(blocker)])
    assert node_ok[trie.start([1, 5])] and end_ok[trie.start([1, 5])]
    assert not node_ok[trie.start([1, 2])] and not node_ok[trie.start([4])]
    assert node_ok[trie.start([1])]  # still on the path of 1 5


def test_a_row_its_book_leaves_no_token_writes_freely_and_is_counted():
    trie = _KnownClauses([[1, 2]], [90], 99)
    scores = torch.zeros(1, 100)
    scores[0, 2] = float("-inf")  # another rule (the repeat ban) bans the only way on
    masked, stuck = trie.mask(scores, np.array([trie.start([1])]), np.zeros(1, dtype=np.int64),
                              [trie.allowed([])], np.ones(1, dtype=bool))
    assert stuck.tolist() == [0] and torch.equal(masked, scores)


# -- the engine ----------------------------------------------------------------------------------

def forced_toward(engine: Generator, token: str) -> Generator:
    """The tiny model, changed to write `token` next whatever came before (as in test_generation_engine)."""
    model = copy.deepcopy(engine.model)
    t = engine.tokenizer.convert_tokens_to_ids(token)
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        model.transformer.ln_f.weight[0] = 0.0
        model.transformer.ln_f.bias[0] = 40.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[t, 0] = 1.0
    return Generator(model, engine.tokenizer, engine.manifest, "cpu", batch_size=4, clause_book=engine.clause_book)


def test_every_clause_is_a_clause_of_the_book_even_where_the_model_is_forced_elsewhere(engine):
    book = set(engine.clause_book.clauses)
    requests = [Request(s, variants=4) for s in SOURCES]
    # no repeat ban: six copies' clauses are soon all written once (see the test of a row left no token)
    sample = {"seed": 5, "max_new_tokens": 60, "temperature": 1.3, "top_p": 1.0}
    free = _clauses(t for variants in engine.generate(requests, **sample) for t in variants)
    assert sum(c not in book for c in free) / len(free) > 0.3  # a tiny model garbles many clauses
    known = [t for variants in engine.generate(requests, **sample, known_clauses=True) for t in variants]
    assert all(c in book for t in known for c in wordpairs.clauses(t)[:-1])  # the last may be cut by the budget
    assert sum(len(wordpairs.clauses(t)) > 1 for t in known) > len(known) / 2
    forced = forced_toward(engine, "裤")  # writes 裤裤裤... unchecked
    texts = [t for variants in forced.generate(requests, **sample, known_clauses=True) for t in variants]
    assert all(c in book for text in texts for c in wordpairs.clauses(text)[:-1])
    assert all("裤裤" not in t for t in texts)


def test_a_requests_banned_phrase_takes_its_clauses_out_of_its_book_only(engine):
    requests = [Request(SOURCES[0], variants=6, banned=("百搭", "亲肤")), Request(SOURCES[0], variants=6)]
    sample = {"seed": 7, "max_new_tokens": 80, "temperature": 1.5, "top_p": 1.0}
    banned, free = engine.generate(requests, **sample, known_clauses=True)
    assert not [t for t in banned if "百搭" in t or "亲肤" in t]
    assert any("百搭" in t or "亲肤" in t for t in free)
    book = set(engine.clause_book.clauses)
    assert all(c in book for t in banned for c in wordpairs.clauses(t)[:-1])


def test_a_row_whose_every_clause_is_banned_still_writes_its_copy(engine):
    firsts = sorted({c[0] for c in engine.clause_book.clauses})  # a phrase of one character: every clause's start
    [[text]] = engine.generate([Request(SOURCES[1], banned=tuple(firsts))], seed=1, max_new_tokens=30,
                               known_clauses=True)
    assert text and not any(ch in text for ch in firsts)


def test_a_row_writes_only_clauses_its_own_garment_type_wrote(engine):
    book = engine.clause_book
    kinds = dict(zip(book.clauses, book.types))
    requests = [Request(s, variants=6) for s in SOURCES]
    sample = {"seed": 3, "max_new_tokens": 60, "temperature": 1.5, "top_p": 1.0}
    texts = engine.generate(requests, **sample, known_clauses=True)
    for source, variants in zip(SOURCES, texts):
        kind = source.split("*")[0].removeprefix("类型#")
        assert all(kind in kinds[c] for t in variants for c in wordpairs.clauses(t)[:-1])
    untyped = engine.generate([Request("颜色#白色", variants=6)], **sample, known_clauses=True)
    assert len({k for t in untyped[0] for c in wordpairs.clauses(t)[:-1] for k in kinds[c]}) >= 2  # any type's


def test_a_checkpoint_without_a_book_is_refused_with_a_reason(engine):
    bare = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=4)
    assert bare.generate([Request(SOURCES[0])], seed=1, max_new_tokens=10)  # decodes without one
    with pytest.raises(ValueError, match="has no clause book"):
        bare.generate([Request(SOURCES[0])], seed=1, max_new_tokens=10, known_clauses=True)
