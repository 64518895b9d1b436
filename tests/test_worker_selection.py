"""Choosing k variants from a product's candidates: passing first, by score, never two near-duplicates."""

from __future__ import annotations

import math

import pytest

from copygen.catalogue import Product
from copygen.compliance import load_lexicon
from copygen.score_weights import MAX_TOTAL
from worker import filters, selection

WHITE_COTTON_TOP = Product(external_id="t", attributes={"类型": ["上衣"], "颜色": ["白色"], "材质": ["棉"]})
GOOD = [  # three clean, mutually distinct copies of a white cotton top
    "这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。",
    "纯棉面料的白色上衣，透气舒适不闷热，落肩设计慵懒随性，搭配牛仔裤或半身裙都能轻松出街。",
    "白色是永不过时的经典，这件上衣选用柔软棉质，宽松廓形包容身材，领口细节精致，质感在线。",
]
WRONG_COLOUR = "这款黑色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。"
VAGUE = "这款上衣版型简约，柔软亲肤，百搭又显瘦，日常通勤或周末出游都很合适，值得入手哦，快来看看吧。"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def assess(texts, lexicon, logprobs=None):
    return selection.assess(texts, logprobs or [-1.0] * len(texts), WHITE_COTTON_TOP, lexicon, length="medium",
                            edges=None)


def test_passing_candidates_are_kept_before_flagged_ones_whatever_their_score(lexicon):
    pool = assess([WRONG_COLOUR, GOOD[0], VAGUE], lexicon)
    kept = selection.choose(pool, 2)
    assert [c.text for c in kept] == [GOOD[0], VAGUE]
    assert all(c.passed and c.score >= 0 for c in kept)
    assert pool[0].flags == ["contradiction:颜色:黑色"] and selection.weigh(pool[0].terms, pool[0].flags) < 0


def test_near_duplicates_are_never_kept_while_a_distinct_candidate_is_left(lexicon):
    twin = GOOD[0].replace("日常通勤", "日常上班")
    kept = selection.choose(assess([GOOD[0], twin, GOOD[1]], lexicon), 2)
    assert [c.text for c in kept] == [GOOD[0], GOOD[1]]


def test_too_few_distinct_candidates_still_give_k_variants_the_repeat_flagged(lexicon):
    kept = selection.choose(assess([GOOD[0], GOOD[0]], lexicon), 2)
    assert len(kept) == 2
    assert kept[0].passed and kept[1].flags == ["near_duplicate"] and kept[1].score < 0


def test_a_passing_repeat_and_a_flagged_candidate_compete_by_score_each_with_its_flags(lexicon):
    twin = GOOD[0].replace("日常通勤", "日常上班")
    two_flags = "全网最好的黑色上衣，纯棉面料柔软亲肤，落肩设计慵懒随性，搭配牛仔裤或半身裙都能轻松出街，闭眼入。"
    pool = assess([GOOD[0], two_flags, twin], lexicon)
    assert len(pool[1].flags) == 2  # a wrong colour and an Advertising Law term
    kept = selection.choose(pool, 2)
    # the repeat carries one flag (near_duplicate) and the other two: the repeat is the better second
    assert [c.text for c in kept] == [GOOD[0], twin] and kept[1].flags == ["near_duplicate"]
    # one flag each: the higher score wins, whichever it is
    one_flag = two_flags.replace("全网最好的", "")
    pool = assess([GOOD[0], one_flag, twin], lexicon)
    as_second = {one_flag: selection.weigh({**pool[1].terms, "distinct": 1.0}, pool[1].flags),
                 twin: selection.weigh({**pool[2].terms, "distinct": 1.0}, ["near_duplicate"])}
    kept = selection.choose(pool, 2)
    assert kept[1].text == max(as_second, key=as_second.get) and len(kept[1].flags) == 1


def test_a_job_whose_every_candidate_fails_keeps_k_flagged_variants_with_their_reasons(lexicon):
    kept = selection.choose(assess([WRONG_COLOUR, "最好的白色纯棉上衣" * 3, ""], lexicon), 3)
    assert len(kept) == 3 and not any(c.passed for c in kept)
    assert all(c.flags for c in kept) and {"empty"} in [set(c.flags) for c in kept]


def test_with_none_passing_copy_that_reads_badly_is_kept_before_a_wrong_fact(lexicon):
    broken = "这款白色上衣采用纯棉面料，不仅柔软亲肤。简约的版型让你穿着更加的时尚感，日常通勤或周末出游都很合适。"
    pool = assess([WRONG_COLOUR, broken], lexicon)
    assert pool[0].flags == ["contradiction:颜色:黑色"]
    assert pool[1].flags == ["unfinished:不仅", "ungrammatical:更加的时尚感"]  # two flags against one
    assert [c.text for c in selection.choose(pool, 2)] == [broken, WRONG_COLOUR]
    assert selection.weigh({}, ["unstated:碎花"]) == selection.weigh({}, ["ad_law:最好"]) < selection.weigh({}, ["repetition"] * 9)


def test_the_score_prefers_coverage_fluency_and_agreement(lexicon):
    pool = assess([GOOD[0], VAGUE], lexicon)
    assert pool[0].terms["coverage"] > pool[1].terms["coverage"]
    kept = selection.choose(pool, 2)
    assert kept[0].text == GOOD[0]
    fluent, garbled = assess([GOOD[1], GOOD[2]], lexicon, logprobs=[-0.5, -4.0])
    assert math.isclose(fluent.terms["fluency"], math.exp(-0.5))
    assert fluent.terms["fluency"] > garbled.terms["fluency"]
    # the candidate that agrees with most others is the safest: three near-paraphrases and an outlier
    agreeing = assess([GOOD[0], GOOD[0].replace("日常", "平时"), GOOD[0].replace("周末", "假日"), GOOD[2]], lexicon)
    assert agreeing[0].terms["agreement"] > agreeing[3].terms["agreement"]


def test_copy_that_says_a_selling_point_again_is_less_varied_and_chosen_after_copy_that_does_not(lexicon):
    # the demo model's "穿着舒适…穿着更加舒适": blind readers count each repeat against the copy
    repeating = "这款衬衫采用纯棉面料，穿着舒适透气。简约的翻领设计，穿着更加舒适，舒适又百搭。"
    varied = "这款衬衫采用纯棉面料，柔软透气。简约的翻领设计，修饰脖颈线条，通勤日常都好搭。"
    assert selection.restated_words(repeating) >= 3 and selection.restated_words(varied) == 0
    assert selection.restated_words("简约的翻领设计，精致的口袋设计") == 0  # 设计 names what every feature is
    assert selection.variedness(varied) == 1.0 > selection.variedness(repeating)
    assert selection.variedness("舒适舒适舒适舒适舒适") == 0.0
    pool = assess([repeating, varied], lexicon)
    for c in pool:  # equal on everything else
        c.terms.update(coverage=1.0, fluency=0.5, agreement=0.2, length=1.0)
    assert selection.choose(pool, 1)[0].text == varied


def test_copy_that_says_design_again_and_again_is_less_varied(lexicon):
    # make demo's final job (2026-12-06, evening): "抽绳设计，松紧腰头的设计…哈伦设计", counted a repeat by both readers
    designs = "这款牛仔裤，破洞设计，时尚小脚设计，让你轻松穿出随性不羁的街头风范。"
    once = "这款牛仔裤，破洞设计，时尚小脚的裤型，让你轻松穿出随性不羁的街头风范。"
    assert selection.restated_designs(designs) == 1 and selection.restated_designs(once) == 0
    assert selection.restated_words(designs) == 0  # not a content word: 设计 names what every feature is
    assert selection.variedness(once) == 1.0 > selection.variedness(designs)
    pool = assess([designs, once], lexicon)
    for c in pool:  # equal on everything else
        c.terms.update(coverage=1.0, fluency=0.5, agreement=0.2, length=1.0)
    assert selection.choose(pool, 1)[0].text == once


def test_copy_that_says_an_effect_again_in_other_words_is_less_varied(lexicon):
    # make demo's wide trousers: longer legs three times, in words jieba reads as different (2026-12-06)
    repeating = "高腰的设计，轻松拉长腿部比例，打造出大长腿的视觉感。阔腿的裤型设计，修饰腿型，轻松打造长腿。"
    varied = "高腰的设计，轻松拉长腿部比例。阔腿的裤型设计，修饰腿型，穿着舒适，垂感十足，走路带风。"
    assert selection.restated_effects(repeating) == 2 and selection.restated_effects(varied) == 0
    # a longer figure in other words: make demo's trench coat (2026-12-06, night)
    assert selection.restated_effects("充满了英伦的风情，还有着拉长身形的效果，在视觉上拉伸身材比例。") == 1
    assert selection.variedness(varied) > selection.variedness(repeating)
    pool = assess([repeating, varied], lexicon)
    for c in pool:  # equal on everything else
        c.terms.update(coverage=1.0, fluency=0.5, agreement=0.2, length=1.0)
    assert selection.choose(pool, 1)[0].text == varied


def test_the_weights_are_one_place_and_a_flag_outweighs_every_term():
    assert set(selection.WEIGHTS) == {"coverage", "fluency", "agreement", "length", "distinct", "varied"}
    # the defaults as written; a weights file is held to the same bound when it is read
    assert sum(selection.DEFAULT_WEIGHTS.values()) <= MAX_TOTAL < selection.FLAG_PENALTY


def test_choosing_leaves_the_pool_as_it_was_so_a_grown_pool_is_chosen_from_afresh(lexicon):
    pool = assess([GOOD[0], GOOD[0], GOOD[1]], lexicon)
    first = selection.choose(pool, 3)
    again = selection.choose(pool, 3)
    assert [c.flags for c in first] == [c.flags for c in again] == [[], [], ["near_duplicate"]]
    assert all(c.flags == [] for c in pool)


def test_each_kept_score_counts_distinctness_against_the_variants_ranked_above_it(lexicon):
    twins = [GOOD[0], GOOD[0].replace("日常通勤", "日常上班"), GOOD[0].replace("周末出游", "周末约会")]
    # a close paraphrase picked second loses its place to a distinct candidate picked third
    paraphrase = GOOD[0].replace("日常通勤或周末出游都很合适", "上班约会都能轻松驾驭")
    reordered = assess([GOOD[0], paraphrase, GOOD[1]], lexicon, logprobs=[-0.3, -0.4, -0.3])
    assert [c.text for c in selection.choose(reordered, 3)] == [GOOD[0], GOOD[1], paraphrase]
    for pool in (assess([*GOOD, VAGUE], lexicon), assess([*twins, GOOD[1], VAGUE], lexicon),
                 assess([VAGUE, *twins, WRONG_COLOUR], lexicon), reordered):
        kept = selection.choose(pool, 3)
        for position, c in enumerate(kept):
            above = max((filters.similarity(c.text, o.text) for o in kept[:position]), default=0.0)
            assert c.score == selection.weigh({**c.terms, "distinct": 1.0 - above}, c.flags)
        assert [(not c.passed, -c.score) for c in kept] == sorted((not c.passed, -c.score) for c in kept)
