"""The clause judge (trainer.clausejudge): tells a model's clauses from people's, and the engine
draws the clauses it rejects again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer import clausejudge
from trainer.clausejudge import ClauseJudge, fit
from trainer.generation import Generator, Request
from trainer.testing import tiny_checkpoint

# people's clauses, and the shapes a small model writes (the demo model's, 2026-12-04)
PEOPLE = ["这款连衣裙采用雪纺面料", "柔软亲肤", "简约的版型百搭又显瘦", "高腰的设计拉长腿部比例", "露出纤细的脚踝",
          "复古的格纹元素", "宽松的廓形慵懒又舒适", "精致的刺绣图案", "v领的设计修饰脖颈线条", "轻松穿出大长腿"]
MODEL = ["使得整体的设计更加的显得更加的修长", "让你的身材更加的显得更加的时尚", "更加的显得更加的优雅",
         "裤子的设计使得整体的设计更加的时尚", "让你看起来更加的感觉", "而且还能够很是显得更加的修饰身材",
         "衣身的设计使得整体更加的显得更加的有型", "让你的穿着更加的显得更加的舒适"]


@pytest.fixture(scope="module")
def judge():
    return fit(PEOPLE * 20, MODEL * 20, PEOPLE, quantile=0.1, epochs=8)[0]


def test_pieces_stay_inside_their_clause_whatever_clauses_stand_beside_it():
    alone = clausejudge.pieces(["高腰的设计"])
    beside = clausejudge.pieces(["更加的", "高腰的设计", "显瘦"])
    assert sorted(alone[0].tolist()) == sorted(beside[0][beside[1] == 1].tolist())
    assert len(alone[0]) == 7 + 6 + 5 + 4  # 1- to 4-character pieces of the 7 characters with its edges
    assert clausejudge.clauses("高腰的设计，显瘦。") == ["高腰的设计", "显瘦"]


def test_the_judge_tells_the_models_shapes_from_peoples_on_clauses_it_never_saw(judge):
    unseen_people = ["简约的翻领设计", "露出精致的锁骨"]
    unseen_model = ["领口的设计使得整体更加的显得更加的精致", "让你的气质更加的显得更加的优雅"]
    assert judge.logits(unseen_people).min() > judge.logits(unseen_model).max()
    assert clausejudge.auc(judge.logits(unseen_people), judge.logits(unseen_model)) == 1.0
    likeliest = PEOPLE[int(judge.logits(PEOPLE).argmax())]
    assert judge.rejects_all(["让你的气质更加的显得更加的优雅，", likeliest + "。", "，"]).tolist() == [True, False, False]
    # the threshold: a tenth of the held-out people's clauses below it
    assert (judge.logits(PEOPLE) < judge.threshold).sum() == 1


def test_auc_counts_ties_as_half():
    assert clausejudge.auc([1.0, 2.0], [0.0, 0.5]) == 1.0
    assert clausejudge.auc([1.0], [1.0]) == 0.5
    assert clausejudge.auc([0.0], [1.0, 2.0]) == 0.0


def test_a_saved_judge_loads_with_the_same_logits_and_a_broken_file_is_refused(judge, tmp_path):
    judge.save(tmp_path / clausejudge.FILE)
    loaded = ClauseJudge.load(tmp_path / clausejudge.FILE)
    assert loaded.threshold == pytest.approx(judge.threshold)
    assert np.allclose(loaded.logits(PEOPLE + MODEL), judge.logits(PEOPLE + MODEL), atol=1e-4)
    np.savez(tmp_path / "bad.npz", buckets=np.array([clausejudge.BUCKETS], dtype=np.int32),
             weights=np.array([1.0], dtype=np.float32), bias=np.float32(0), threshold=np.float32(0))
    with pytest.raises(ValueError, match="buckets"):
        ClauseJudge.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="people's clauses"):
        fit([], MODEL, PEOPLE, quantile=0.1)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "judged", steps=60, clause_judge=24)


def test_training_with_clause_judge_saves_a_judge_the_engine_loads(judged):
    manifest = json.loads((judged / "copygen.json").read_text(encoding="utf-8"))
    record = manifest["clause_judge"]
    assert record["samples"] == 24 and 0.5 < record["auc"] <= 1.0
    assert (judged / clausejudge.FILE).is_file()
    generator = Generator.load(judged, device="cpu", batch_size=4, dtype="float32")
    assert generator.clause_judge is not None
    assert generator.clause_judge.threshold == pytest.approx(record["threshold"], abs=1e-3)


def _rejected_share(generator: Generator, texts) -> float:
    clauses = [c for text in texts for c in clausejudge.clauses(text)]
    return float((generator.clause_judge.logits(clauses) < generator.clause_judge.threshold).mean())


def test_with_the_clause_judge_far_fewer_clauses_fall_below_its_threshold(judged):
    generator = Generator.load(judged, device="cpu", batch_size=8, dtype="float32")
    requests = [Request(source, variants=8) for source in
                ["类型#上衣*颜色#白色*材质#棉*风格#简约", "类型#裙*材质#雪纺*图案#碎花*裙型#a字"]]
    sample = {"seed": 2, "max_new_tokens": 60, "temperature": 1.3, "top_p": 1.0}
    plain = _rejected_share(generator, [t for v in generator.generate(requests, **sample) for t in v])
    checked = _rejected_share(generator, [t for v in generator.generate(requests, **sample, clause_judge=True)
                                          for t in v])
    assert plain > 0.2  # hot sampling garbles many clauses of a tiny model
    assert checked < plain / 2


def test_a_checkpoint_without_a_judge_decodes_as_before_and_says_so(tmp_path, caplog):
    import logging

    bare = Generator.load(tiny_checkpoint(tmp_path / "bare", steps=20), device="cpu", batch_size=4, dtype="float32")
    requests = [Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=2)]
    with caplog.at_level(logging.WARNING):
        assert bare.generate(requests, seed=4, max_new_tokens=30, clause_judge=True) == \
            bare.generate(requests, seed=4, max_new_tokens=30)
    assert "has no clause judge" in caplog.text
