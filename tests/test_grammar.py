"""The broken sentence shapes copygen.grammar finds, and the flags worker.filters gives them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copygen import grammar
from copygen.catalogue import Product
from copygen.compliance import load_lexicon
from worker import filters

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "advertisegen_sample.jsonl"
SHARED_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"
WHITE_COTTON_TOP = Product("SKU-1", "白色纯棉上衣", "上衣", {"颜色": ["白色"], "材质": ["棉"]})
GOOD = "这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


@pytest.mark.parametrize("text, found", [
    ("白色的雪纺面料，不仅能够将女性的优雅气质。简约的版型百搭又显瘦，通勤出游都合适，穿着舒适又透气。", ["不仅", "将"]),
    ("白色的雪纺面料，不但轻盈透气，简约的版型百搭显瘦", ["不但"]),  # the copy's end ends the sentence
    ("不仅显瘦。还很百搭，白色的雪纺面料，简约的版型通勤出游都合适，穿着舒适又透气，是夏天的好选择。", ["不仅"]),
    ("白色的雪纺面料，不仅轻盈透气，还很显瘦。简约的版型百搭，通勤出游都合适，穿着舒适。", []),
    ("白色的雪纺面料不仅好看也保暖，不光百搭，更是显瘦，简约的版型通勤出游都合适，穿着舒适。", []),
    # a make demo rank-1 copy, 2026-12-05: the 而且 answers the 不仅, the 不但 before it has none
    ("针织开衫在春秋季节不但十分的百搭时尚，这款宽松的版型，不仅能够很好地修饰身形，而且还能衬托女性的优雅气质。", ["不但"]),
    ("白色的雪纺面料，简约的版型百搭又显瘦，通勤出游都合适，穿着舒适又透气，是夏天的好选择。", []),
    ("百褶裙摆的设计，将女性的优雅气质。简约的版型百搭又显瘦，通勤出游都合适，穿着舒适又透气。", ["将"]),
    ("百褶裙摆的设计，将女性的优雅气质展现得淋漓尽致，简约的版型百搭又显瘦，通勤出游都合适。", []),
    ("墨绿色调，散发出优雅的气质，让你的穿着体验。文艺的色彩，带来一种清纯的视觉效果。", ["让"]),
    ("墨绿色调，散发出优雅的气质，让你的穿着体验更加舒适。文艺的色彩，让你尽显好气质。", []),
    ("松紧腰的设计，还能够拉长腿部的同时也让你的穿着体验。两侧的口袋，实用美观。", ["让"]),
    ("后背的纽扣设计，能够很好的展现出来，还能衬托气质。", ["很好的展现出来"]),
    ("复古的格纹元素，将女性的淋漓尽致。", ["将"]),
    ("复古的格纹元素，将女性的魅力展现得淋漓尽致，将个人风格与气质淋漓尽致地展现。", []),
    ("修身的剪裁，将女性的身材完美的展现出来，纤柔的肩部线条和精致锁骨完美的展现出来。", []),
    # make demo's rank-1 copies, 2026-12-04, late night
    ("高腰的设计，既能够凸显出你的身材曲线。", ["既"]),
    ("高腰的设计，既能够凸显出你的身材曲线", ["既"]),  # the copy's end ends it too
    ("高腰的设计，既能凸显身材曲线，又能拉长腿部比例。既显瘦也时尚。", []),
    ("松紧的裤脚，既可以露出纤细的脚踝。又能够保暖，打造大长腿的既视感，一如既往的简约。", []),
    ("这款黑色的西装面料制作而成，穿着舒适。", ["制成"]),
    ("这款裤子由西装面料制作而成，纯棉面料打造而成，这款实木制成的汤勺。", []),
    ("灰色的衣身，让你更加舒适的穿着体验。", ["让"]),
    ("灰色的衣身，让你拥有舒适的穿着体验，让人更加舒适。", []),
    ("衣身的字母织带点缀，更显青春活力，让你的感觉，", ["让"]),
    # 还是 inside a clause is a choice, no answer: make demo's suit trousers, 2026-12-06, night
    ("九分裤的设计，不仅能够良好的修饰身材，不管是职场mm还是日常搭配都能轻松驾驭。", ["不仅"]),
    ("这款风衣不仅是一件外套，还是一件百搭的单品。", []),
])
def test_a_sentence_that_opens_with_an_opener_must_go_on(lexicon, text, found):
    assert grammar.unfinished(text) == found
    flags = filters.check(text, WHITE_COTTON_TOP, lexicon, [])
    assert [f for f in flags if f.startswith("unfinished:")] == [f"unfinished:{w}" for w in found]


@pytest.mark.parametrize("text, found", [
    ("裤子采用了宽松的版型，让整体看起来更加的立体感。", ["更加的立体感"]),
    ("抽绳的设计，让你穿着更加的优雅气质，十分的实用性。", ["更加的优雅气质", "十分的实用性"]),
    ("层叠的设计让裙摆更加有层次感，更加凸显气质，穿着更加舒适。", []),  # 有 and 凸显 are verbs
    ("v领的设计，显得更加性感，十分的有个性，更加时尚个性。", []),  # adjectives, not nouns
    ("更加的时尚感觉良好", []),  # the noun does not end the clause: another reading
    ("穿起来显得更加的腿型，还能够更加的穿着体验。", ["更加的腿型", "更加的穿着体验"]),
    ("直筒的版型更加修饰腿型，更加贴合身型。", []),  # verbs before the nouns
    ("能够很好的提升了整体的气质，可以很好地修饰腿型，在视觉上拉长了腿部线条。", ["能够很好的提升了"]),
    ("还能够起到了修饰身材的作用。", ["能够起到了"]),
    ("款式简洁，一目了然，百搭又显瘦，可以入手了。", []),  # 了然 is a word, a clause's last 了 a particle
    # what the demo model wrote for the first 60 validation products, 2026-12-04, night
    ("高级的百褶裙摆，更显得更加的优雅。", ["更显得更加"]),
    ("百褶的裙摆，更显优雅，显得更加甜美。", []),
    ("裤脚处的设计非常的深蓝色，衬衫是非常的复古风格。", ["非常的深蓝色", "非常的复古风格"]),
    ("带来非常的人性化的设计，非常的简约的设计，十分的衬肤色。", []),  # adjectives with their own 的, a verb
    ("这款半身裙的雪纺半身裙，裙摆的褶皱褶裙摆，修饰身材的身形。", ["身裙的雪纺半身裙", "裙摆的褶皱褶裙摆", "身材的身形"]),
    ("选用中长款的长度，饱满的金属质感，腰部的设计。", []),
    ("荷叶边的设计，展现出女性的女人味。", ["女性的女人味"]),
    ("荷叶边的设计，展现出十足的女人味。", []),
    ("宽松的版型，不会显得更加的修长，也不会有型。", ["不会显得更加的修长", "不会有型"]),
    ("宽松的版型，不会显得臃肿，也不会有束缚感。", []),
    ("裤脚的设计，不会很好的修饰腿型。", ["不会很好的"]),
    ("直筒的版型，更加的修饰腿型，更加的展现出女性的气质。", ["更加的修饰", "更加的展现"]),
    ("直筒的版型，更好地修饰腿型，更加的显瘦，十分的方便。", []),  # 更好地 + verb; 显瘦, 方便 are no verbs here
    ("荷叶边的裙摆，更是显得更加的优雅，针织开衫的针织衫。", ["更是显得更加", "衫的针织衫"]),
    ("小喇叭袖更是十分具有艺术感，搭配一条牛仔裤，更是显得十分自然。", []),  # as the references write
    ("衣身采用了撞衫的系带设计，风格独特不易撞衫。", ["撞衫"]),  # the model's 撞衫 for 撞色
    ("避免撞衫的尴尬，不想满大街羽绒服撞衫。", []),
    # make demo's rank-1 copies, 2026-12-04, late night
    ("让你的身材更加的凸显得更加的纤细，让人看起来更加的感觉。", ["更加的感觉", "更加的凸显得更加"]),
    ("精致的小立领，修饰了颈部的脖颈。", ["颈部的脖颈"]),
    ("高腰的设计，显得整体的身材比例，显得很有气质，显得身材高挑。", ["显得整体的身材比例"]),
    ("通勤还是逛街都可以穿搭都可以驾驭，可以打底也可以单穿。", ["都可以穿搭都可以"]),
    # read blind in rank-1 copies of the first 200 validation products
    ("时尚又不失时尚感，很是很好的修饰身材，适合各种身材都可以轻松驾驭，让整体看起来更加的效果。",
     ["时尚又不失时尚", "很是很", "适合各种身材都可以", "更加的效果"]),
    ("时尚又不失优雅，上身效果很是显瘦，适合各种身材，非常好的效果，更加包容身材。", []),
    ("简约的衬衫版型，不仅能够很好的包容性，而且穿着舒适。", ["能够很好的包容性"]),
    ("宽松的版型，有很好的包容性，能够很好地修饰身材。", []),
    # two nouns under one degree adverb (make demo, 2026-12-06); an adjective, 有 and a noun is fine
    ("雪纺面料的轻盈顺滑，让整体的造型更加层次质感。", ["更加层次质感"]),
    ("更加性感有魅力，非常优雅有气质，更加舒适的同时。", []),
    # a product introduced again in its sentence (make demo's candidates, 2026-12-06)
    ("这款外套设计感非常强，这是一件很有设计感的牛仔外套，单排扣的设计。", ["这是一件"]),
    ("这款外套设计感非常强。这是一件很有设计感的牛仔外套。", []),  # a sentence of its own
    ("吊带裙的内衬加上透视网纱，这是一款将性感时髦兼具一身的单品。", []),  # as a reference writes it
    ("这款的设计非常的经典，宽松的版型，这一款开衫有多种穿搭方式。", ["这一款"]),
])
def test_ungrammatical_shapes_are_found_and_flagged(lexicon, text, found):
    assert grammar.ungrammatical(text) == found
    flags = filters.check(GOOD + text, WHITE_COTTON_TOP, lexicon, [], length="long")
    assert [f for f in flags if f.startswith("ungrammatical:")] == [f"ungrammatical:{w}" for w in found]


@pytest.mark.parametrize("text, found", [
    ("袖口的设计，修饰脖颈线条，尽显温婉的气质。", ["袖口→脖颈"]),  # the part alone, its effect next
    ("修身的裙摆设计，很好的修饰脖颈的线条，展现迷人的锁骨。", ["裙摆→脖颈"]),
    ("圆领的领设计，可以修饰手臂线条。", ["领→手臂"]),
    ("v领的设计，修饰脖颈线条，露出性感的锁骨。", []),
    ("喇叭袖的设计，修饰手臂线条，显得手臂纤细。", []),
    ("阔腿的裤脚，修饰腿型，拉长腿部比例。", []),
    ("领口的设计很别致，腰部的系带，拉长腿部比例。", []),  # the waist's effect, not the collar's
    ("松紧的口袋设计，方便穿脱，更方便。", ["口袋→方便穿脱"]),  # make demo's harem trousers
    ("两侧的口袋设计，方便放置物品，松紧腰的设计，穿脱方便。", []),  # the waistband's ease, not the pocket's
    ("胸口袋的设计，方便放置物品，方便穿脱。", ["口袋→方便穿脱"]),  # a sentence later
    ("可以在身上的口袋设计，可以很好的修饰身形。", ["口袋→修饰身形"]),
    ("后片有一字口袋丰富层次感，裤子缝纫技术精湛，线条流畅修饰腿型。", []),  # the trousers' effect
    ("这款衬衫的长袖设计，修饰脖颈线条。", ["袖→脖颈"]),  # the part alone in a clause of 9 characters
    ("简洁的短袖设计，很好的遮住大腿上的肉肉。", ["袖→大腿"]),  # make demo's floral dress (2026-12-05, evening)
    ("采用了气质v领的设计，展现出女性的纤细腰肢。", ["领→腰肢"]),  # ... and its lace dress
    ("高腰的设计，勾勒出纤细的腰身。", []),  # the waist's own effect
    # what the part does goes on in the clauses with no subject of their own (make demo, 2026-12-05, night)
    ("这款风衣，小立领设计，修饰颈部曲线，勾勒出纤细的腰身。", ["领→腰身"]),
    ("v领设计，修饰颈部，系带束腰设计，勾勒出纤细腰身。", []),  # the tie waist's effect
    ("小立领设计，修饰颈部曲线。勾勒出纤细的腰身。", []),  # another sentence
    ("松紧腰头的设计，可以很好的修饰腿型，轻松打造长腿。", ["腰头→腿"]),  # make demo's harem trousers
    ("吊带的设计，展现出女性的纤细腰肢。", ["吊带→腰肢"]),
    ("吊带的设计，露出迷人的锁骨。", []),
    ("连帽的设计，修饰脸型，显得更加的俏皮。", []),
    # the whole figure (make demo, 2026-12-05, last night): a collar, a sleeve or a hood does not shape it
    ("小立领的设计，在视觉上拉伸身材比例，将女性的高雅魅力展现得淋漓尽致。", ["领→身材比例"]),
    ("简洁的短袖设计，修饰身材曲线，散发出女性的优雅气息。", ["袖→身材曲线"]),
    ("连帽的款式搭配，不仅能够很好地修饰身形。", ["连帽→身形"]),
    ("精致的小翻领，修饰颈部曲线，勾勒出纤细窈窕的身材。", ["领→身材"]),  # make demo, 2026-12-06
    ("小立领的设计，恰到好处的修饰了脖颈，显得纤细与修长，在视觉上拉伸身材比例。", ["领→身材比例"]),
    ("高腰的设计，修饰身材。", []),
    ("时尚的v领设计，可以让你的双腿看起来更显纤细，展现出大长腿。", ["领→大长腿"]),
    ("高腰的设计，拉长身材比例，显得腿长。", []),  # the waist's own effect
    ("宽松的版型，修饰身形，遮肉显瘦。", []),  # no part
    # ease of dressing from what cannot give it (make demo, 2026-12-05, night)
    ("九分裤长的设计，穿脱方便，适合各种腿型。", ["无开合→穿脱"]),
    ("清新的颜色，同时还方便裤子穿脱。", ["无开合→穿脱"]),
    ("松紧腰的设计，穿脱方便。拉链开合，方便穿脱。", []),
    ("小立领的设计，加上中长的衣长，不仅可以方便穿脱。", ["无开合→穿脱"]),  # make demo's trench coat, 2026-12-06
    ("圆领的设计，穿脱很方便。", []),  # the one collar the references say eases it
    # a place for one's hands or things where no pocket is named (make demo, 2026-12-06)
    ("裤身版型采用微微的哈伦设计，方便插兜，也让置物变得容易。", ["无口袋→方便插兜"]),
    ("单排扣的设计，不仅可以放置物品，还能让你凹造型。", ["无口袋→放置"]),
    ("两侧的斜插口袋，方便插兜，也让置物变得容易。", []),  # the pocket's own service
    ("插兜的设计实用又美观，可以放置随身物品。", []),  # 插兜 is the pocket
    ("口袋设计，美观实用。单排扣的设计，不仅可以放置物品。", ["无口袋→放置"]),  # another sentence
    # a colour that breathes (make demo, 2026-12-06)
    ("浅蓝色的色系，清爽透气，使得裤子看起来干净利落。", ["颜色→透气"]),
    ("浅蓝色的色系，清新淡雅。棉质面料，清爽透气。", []),  # the fabric breathes
    ("浅蓝色的棉质面料，清爽透气。", []),
    # short sleeves or straps that show off long legs a few characters on (make demo, 2026-12-06)
    ("短袖的款式，不仅可以显得手腕纤细，还能够凸显出女性的十足大长腿。", ["袖→大长腿"]),
    ("吊带的设计，显得更加俏皮活泼，还能够凸显出女性的十足大长腿。", ["吊带→大长腿"]),
    ("短袖的款式，凸显出女性的十足优雅气质，衬托身材。", ["袖→身材"]),
    ("高腰的设计，还能够凸显出女性的十足大长腿。", []),  # the waist reaches the legs
    # what a hole, a print, the workmanship, the fabric or a top's length cannot flatter (make demo, 2026-12-06)
    ("加之个性的破洞元素，在视觉上拉伸身材比例。", ["破洞→身材比例"]),
    ("膝盖处的破洞设计，微微露出白皙的双腿。", []),  # a hole shows the legs
    ("精致的做工，可以很好的修饰腿型。", ["做工→腿"]),
    ("碎花图案，展现腰臀的曲线。", ["碎花→腰"]),
    ("采用高档西装面料制作，上身显得腿部纤细又修长。", ["面料→腿"]),
    ("垂坠感的面料，修饰身材。", []),  # a fabric may drape over the figure
    ("中长款的版型，能够很好的修饰颈部曲线。", ["中长款→颈"]),
    ("吊带的设计，不仅起到了装饰的作用，而且更显腿长。", ["吊带→腿"]),  # 显 is a verb of effect too
    ("喇叭袖口的设计，不仅可以衬托出纤细手腕，还能够轻松修饰身体轮廓更添高挑大气。", ["袖口→身体轮廓"]),  # the figure's outline
    # ... nor feel soft or breathe (make demo's 小脚 jeans, 2026-12-06)
    ("采用了小脚裤的设计版型，给你带来更加柔软舒适的穿着体验。", ["小脚→柔软"]),
    ("罗纹裤脚小脚裤，保暖时尚。", []),  # ribbed cuffs keep one warm
    ("小脚的设计，棉质面料柔软舒适。", []),  # the fabric is soft
    ("裤身的破洞元素，带来舒适的穿着体验。", ["破洞→舒适"]),  # nor is a hole comfortable
    ("破洞的设计，弹力面料穿着舒适。", []),  # the stretch fabric is
    # a closure does not shape the figure (make demo's denim jacket, 2026-12-06, evening)
    ("单排扣的设计，不仅可以方便穿脱，还能凸显挺拔身形。", ["单排扣→身形"]),
    ("拉链的设计，不仅方便穿脱，还能凸显挺拔身形。", ["拉链→身形"]),
    ("侧边隐形拉链，显腰身。", []),  # a zip at the side may show the waist
    # nor do straps, though a slip dress may (make demo's plaid slip dress, 2026-12-06, evening)
    ("吊带设计，不仅能够修饰出修长的身材曲线，更显优雅大方。", ["吊带→身材曲线"]),
    ("修身吊带裙让身材更纤细高挑。", []),
    ("深黑色的内里吊带裙，更加贴合肌肤并修饰身材。", []),
])
def test_a_part_that_flatters_a_part_of_the_body_it_does_not_reach_is_misplaced(lexicon, text, found):
    assert grammar.misplaced(text) == found
    flags = filters.check(GOOD + text, WHITE_COTTON_TOP, lexicon, [], length="long")
    assert [f for f in flags if f.startswith("misplaced:")] == [f"misplaced:{w}" for w in found]


@pytest.mark.parametrize("text, found", [
    ("宽松的版型，修身显瘦，穿着舒适。", ["宽松的版型，修身"]),
    ("修身的版型，比较宽松的裤腿。", ["修身的版型，比较宽松"]),
    ("宽松的版型，遮肉显瘦。修身的腰线，勾勒曲线。", []),  # apart: another part, another sentence
])
def test_a_cut_called_loose_and_fitted_at_once_contradicts_itself(lexicon, text, found):
    assert grammar.self_contradictions(text) == found
    flags = filters.check(GOOD + text, WHITE_COTTON_TOP, lexicon, [], length="long")
    assert [f for f in flags if f.startswith("self_contradiction:")] == [f"self_contradiction:{w}" for w in found]


def test_the_committed_references_are_neither_unfinished_nor_ungrammatical():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 100 and any("不仅" in row["summary"] for row in rows)  # the rule has work to do
    assert any("更加" in row["summary"] for row in rows)
    # one is: 既 with 有 typed for 又 ("既有立体感，有带出性感妩媚的女人味")
    assert [row["summary"][22:39] for row in rows if grammar.unfinished(row["summary"])] == ["既有立体感，有带出性感妩媚的女人味"]
    assert [row["summary"] for row in rows if grammar.ungrammatical(row["summary"])] == []
    assert [row["summary"] for row in rows if grammar.misplaced(row["summary"])] == []
    assert [row["summary"] for row in rows if grammar.self_contradictions(row["summary"])] == []


@pytest.mark.skipif(not SHARED_PAIRS.exists(), reason=f"{SHARED_PAIRS} is not beside this checkout")
def test_few_of_all_5000_references_are_unfinished_or_ungrammatical():
    """38 of the 5,000 unfinished (0.76%) and 11 ungrammatical (0.22%), most of them as broken as the
    model's are: "不仅优雅浪漫。", "将你女性的魅力", "既有立体感，有带出...", "更加美感", "更加层次质感", "能够增添了",
    "饱满质感的金属质感", "轻松被轻松", "这件纯色的翻领设计…，这一款纯色的蕾丝衬衫"."""
    rows = [json.loads(line) for line in SHARED_PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert 0 < sum(bool(grammar.unfinished(row["summary"])) for row in rows) <= 0.008 * len(rows)
    assert 0 < sum(bool(grammar.ungrammatical(row["summary"])) for row in rows) <= 0.0022 * len(rows)
    # 18: an embroidered belt said to flatter the waist, 7 saying 穿脱 with nothing that eases it ("穿脱方便的同时还很显年轻"), 5
    # collars or cuffs said to shape the figure, 2 places for one's things with no pocket ("背部设小包，可折叠存放更方便携带收纳")
    # and 2 colours that breathe ("色系饱满而细腻，更加亲肤的同时还有是身材")
    assert sum(bool(grammar.misplaced(row["summary"])) for row in rows) <= 18 * len(rows) // 5000
    assert sum(bool(grammar.self_contradictions(row["summary"])) for row in rows) <= 0.0025 * len(rows)  # 10


def test_a_clause_leaves_a_bujin_open_until_one_answers_it():
    assert grammar.leaves_open("不仅是打破了这款针织开衫的单调感")
    assert not grammar.leaves_open("不仅修饰身形还显高") and not grammar.leaves_open("选用百搭灰色调装饰")
    assert grammar.answers("还能凸显挺拔身形") and grammar.answers("搭配起来也比较方便")
    assert not grammar.answers("选用百搭灰色调装饰") and not grammar.answers("不管是职场mm还是日常搭配")
