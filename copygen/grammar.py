"""Sentence shapes that are broken in any copy, found by their words alone.

A small model writes them often and people rarely (measured on the demo model's rank-1 copies of
the first 200 validation products and on the references of the shared data):

- unfinished(): "不仅 A" promises "还 / 也 / 更 B" in the same sentence, and the model ends the
  sentence after A: "不仅能够展现出女性的柔美的气质。" (21 of the 200 copies; 26 of the 5,000
  AdvertiseGen references, 0.52%, most of them as broken: "不仅优雅浪漫。"; 15 of the 5,236 Taobao
  descriptions). So does a clause "将 + what", which needs a verb after it ("将女性的优雅气质展现得淋漓
  尽致"), ended at the noun: "百褶裙摆的设计，将女性的优雅气质。" (2 of the 20 rank-1 copies of one
  `make demo` job; 4 of the 5,000 references: "将你女性的魅力"; none of the Taobao descriptions), and
  a clause "让你的 + noun" ("让你的穿着体验": 3 of the 200 copies of the 6-epoch demo model; none of
  the references or the Taobao descriptions).
- ungrammatical(): 更加 (非常, 十分...) qualifies an adjective or a verb, never a bare noun:
  "更加有层次感", not "更加的层次感" (26 of the 200 copies: "更加的优雅气质", "更加的实用性"; 4 of the
  5,000 references: "更加美感"; 1 of the 5,236 Taobao descriptions). Once those were flagged, the
  copy chosen said "更加的穿着体验" instead (4 of the 200), so 体验 and the like are nouns here too.
  Nor does a verb after 可以 or 能够 take 了: "能够很好的提升了整体的气质", "能够起到了修饰身材的作用" (8 of
  the 200 copies; 1 of the references, "能够增添了", and 1 of the Taobao descriptions).
  Three more shapes from the 1,464 candidates the demo model drew for the first 60 validation
  products (2026-12-04, night), none of them in the references but two: a comparative stacked on
  a comparative, "更显得更加的优雅" (6.6% of the candidates); a degree adverb on a thing,
  "非常的深蓝色", "更加的细节设计", "是非常的复古风格" (0.8%); and a noun doubled around what should
  qualify it, "这款半身裙的雪纺半身裙", "裙摆的褶皱褶裙摆" (3.0%; 2 of the AdvertiseGen references,
  "饱满质感的金属质感", and 2 of the Taobao descriptions). Also in those candidates and in none of
  the references or descriptions: a part of the body that qualifies itself, "修饰身材的身形",
  "勾勒出腰部的腰身" (doubled nouns of either kind: 5.9%), and a merit denied, "不会显得更加的修长",
  "不会很好的修饰" (1.4%). And 更加的 on a verb, which takes 更加 bare or 更好地: "更加的修饰腿型",
  "更加的展现出" (12.5%; none of the references or descriptions; two references write 十分 or 非常
  so, "十分的展现", left alone). Read blind, those choices had fewer broken clauses still, and these
  four: "更是显得更加" (stacked too), "针织开衫的针织衫" (doubled: 2 of the Taobao descriptions,
  "短裤的连体裤"), and, unfinished, a short clause that shows off nothing, "还能很好的展现出来" (2.9%
  of the candidates; none of the references, which say what: "将女性的身材完美的展现出来").

- misplaced(): a part of the garment said to flatter a part of the body it does not reach, "袖口的
  设计，修饰脖颈线条", "修身的裙摆设计，很好的修饰脖颈的线条" (1.9% of those 1,464 candidates; 2 of the
  AdvertiseGen references, where a v领 shows the neck and 纤细的手臂 together, none of the Taobao
  descriptions); and a pocket said to make the garment easier to put on, "口袋设计，方便穿脱", or
  anything else that cannot, "九分裤长的设计，穿脱方便" (7 of the references: no closure, elastic,
  opening or loose cut in the sentence).
- ungrammatical() also flags 撞衫 (two people in the same clothes) written for 撞色: "采用了撞衫的设计"
  (7 of those candidates; make demo called a trench coat's collar 撞衫的小立领). The references and
  descriptions write it 23 times, every time as what the garment avoids (不易撞衫, 避免撞衫的尴尬).

Eight more from the rank-1 copies of one `make demo` job and of the first 200 validation products
(2026-12-04, late night), each kept only where the references stay nearly unflagged (49 of the
5,000 flagged by any rule, against 39 before): 既 with no 又 (9 references, all as broken), "这款…面料
制作而成" with no 由, "让你更加舒适的穿着体验" and "让你的感觉" (unfinished); "显得整体的身材比例", "都可以
穿搭都可以驾驭", "更加的凸显得更加", "颈部的脖颈", "更加的感觉" (ungrammatical); a pocket said to ease
dressing a sentence later or to flatter the figure, and a part named in a clause of up to 10
characters ("这款衬衫的长袖设计，修饰脖颈线条") (misplaced). Then, from blind readings of those 200, a cut
called loose and fitted at once (self_contradictions(): "宽松的版型，修身显瘦") and five more ungrammatical
shapes ("时尚又不失时尚感", "能够很好的包容性"...).

All read text as it is written: no word segmentation, nothing loaded.
"""

from __future__ import annotations

import re

# A character inside a clause, and the end of a clause (a mark or the text's end), for the shapes
# that read one clause
_IN = r"[^，。！？；、,.!?;]"
_END = r"(?=[，。！？；、,.!?;]|$)"

# -- unfinished() --
_SENTENCES = re.compile(r"[^。！？!?…]+")
_OPENERS = re.compile(r"不仅|不但|不只|不光")
# 还是 answers one only opening a clause ("不仅是外套，还是…"): inside one it is a choice, and "不仅能够良好的修饰身材，
# 不管是职场mm还是日常搭配都能轻松驾驭" (make demo's suit trousers, 2026-12-06, night) leaves the 不仅 unanswered
_FOLLOWERS = re.compile(r"还(?!是)|(?:^|(?<=[，,；;]))还是|也|更|且|同时|又|亦|甚至|反而|以及")
# 既 A promises 又 (也, 还...) B, in its sentence or at the start of the next (the references put a
# full stop between them: "既可以露出纤细的脚踝。又能够..."): "既能够凸显出你的身材曲线。" (make demo,
# 2026-12-04) is unfinished. 既视感, 既定, 一如既往 are words of their own. 9 of the 5,000 references
# have the shape, every one as broken ("既有立体感，有带出..."); 1 of the 5,236 Taobao descriptions.
_BOTH = re.compile(r"既(?!视|定|往|然|而|成|得)(?:(?!又|也|还|更|同时|且|亦|兼|而|并)[^。！？!?]){0,40}"
                   r"(?:[。！？!?](?![^。！？!?]{0,3}(?:又|也|还|同时))|$)")
# 将 near the start of a clause, the clause ending at what it takes, with no verb after it
_BARE_JIANG = re.compile(r"(?:^|[，。！？；,.!?;])[^，。！？；,.!?;]{0,4}将[^，。！？；,.!?;]{0,10}"
                         r"(?:气质|魅力|身材|曲线|线条|韵味|气息|美感)(?=[，。！？；,.!?;]|$)")
# 将 + what + 淋漓尽致 ending the clause with no verb to do it ("将女性的淋漓尽致": 2 of the 1,464
# candidates and 2 of this night's make demo rank-1 copies; the references write "将…展现得淋漓尽致" or
# "将…淋漓尽致地展现", none without the verb)
_BARE_JIANG_FULLY = re.compile(r"将(?:(?!展|示|现|演绎|发挥|诠释|彰显|衬|烘托|凸显|呈现|描绘|勾勒|修饰|流露|释放|散发|阐述|表达|刻画"
                               r"|显露|表露|突显|穿|演|诉说|体现|表现|到|得)" + _IN + r"){0,10}?淋漓尽致" + _END)
# 让 / 使 + 你的 + noun, ending the clause: whom it makes do what is missing ("让你的穿着体验")
_BARE_CAUSATIVE = re.compile(r"(让|使)(?:你|人|您)的[\u4e00-\u9fff]{0,4}(?:气质|身材|曲线|魅力|体验|感觉)(?=[，。！？；,.!?;]|$)")
# A short clause that shows "it" off with nothing to show, no 将 or 把 before: "还能很好的展现出来"
_SHOWN_NOTHING = re.compile(r"(?:^|[，。！？；、,.!?;])[^，。！？；、,.!?;将把]{0,8}"
                            r"((?:很好|更好|完美)[的地]?(?:展现|展示|体现|凸显|彰显)出来)" + _END)

# 这款 + what it is made of + 制作而成, with no 由, 采用, 选用...: "这款黑色的西装面料制作而成" (make demo,
# 2026-12-04); none of the references or descriptions ("纯棉面料打造而成" with no 这款 is left alone)
_MADE_OF = re.compile(r"(?:这款|这条|这件|此款|该款)[^，。！？；由以用选采运使将把是,.!?;]{0,12}"
                      r"(?:制作而成|制成|打造而成|缝制而成)" + _END)
# 让你 + a degree + a thing, with no verb to bring it: "让你更加舒适的穿着体验" (make demo, 2026-12-04);
# the references bring it ("让你拥有舒适的穿着体验")
_CAUSED_THING = re.compile(r"(?:让|使)(?:你|人|您)(?:更加|更为|更|非常)" + _IN + r"{0,4}的(?:穿着体验|体验|感觉|穿着感)" + _END)

# -- ungrammatical() --
# The noun ends its clause. A verb may stand between the adverb and the noun ("更加凸显气质", "更加
# 有质感"), and the words of those endings that are adjectives ("性感", "个性") are no nouns. Two nouns
# qualified at once ("让整体的造型更加层次质感": one reference's clause, in 7 of the 480 variants of eight make
# demo jobs, 2026-12-06) are read too, where no 的, 有 or 显 stands between ("更加性感有魅力" is fine).
_DEGREE_NOUN = re.compile(r"(?:更加|更为|非常|十分|越发|愈发)的?(?![有富具显带无的凸突彰衬增提修贴])"
                          r"((?:[\u4e00-\u9fff]{0,2}?|(?:(?![的有显去带具富])[\u4e00-\u9fff]){3})"
                          r"(?:感觉|感|性|度|气质|气息|魅力|韵味|体验|同时|腿型|脸型|身型|版型))" + _END)
_ADJECTIVES = ("个性", "性感", "骨感", "敏感", "感性", "随性", "中性", "知性", "弹性", "韧性")
# 可以 / 能够 (很好的...) + verb + 了: a modal's verb takes no 了
# (了 ending the clause is the particle of "可以入手了", and 了然, 了解 are words of their own)
_MODAL_PERFECTIVE = re.compile(r"(?:可以|能够)(?:(?:很好|更好)[的地])?[\u4e00-\u9fff]{1,2}了"
                               r"(?![然解，。！？；,.!?;]|$)")
# 更显 (更显得, 更是显得, 更加显得) + 更加 / 更为: one comparative is enough ("更显得更加的甜美")
_STACKED = re.compile(r"更(?:是|加|为)?的?(?:凸显|显)得?更(?:加|为)")  # and "更加的凸显得更加的纤细"
# 更加 / 非常... + 的 + a thing, ending the clause: the adverb has no adjective or verb to qualify
# ("非常的深蓝色", "更加的大裙摆设计"); "非常的简约的设计" (an adjective with its own 的) is left alone.
_DEGREE_THING = re.compile(r"(?:更加|更为|非常|十分)的(?![有富具显带无凸突彰衬增提修贴让使给])"
                           r"[^，。！？；、,.!?;的]{0,6}(?:色|裙|裤|风格|图案|面料|材质|元素|工艺|设计)" + _END)
# A word, 的, a few characters and the same word ending the clause: "连衣裙的印花连衣裙"; or a part
# of the body qualifying itself: "身材的身形", "腰部的腰身" (中长款的长度 is no part of the body)
_DOUBLED = re.compile(r"([\u4e00-\u9fff]{2})的" + _IN + r"{1,4}\1" + _END
                      + r"|([身腰腿颈脖肩臂胸臀脚])[\u4e00-\u9fff]的脖?\2[\u4e00-\u9fff]?" + _END  # 颈部的脖颈
                      + r"|([裙裤衫])的" + _IN + r"{0,8}\3" + _END  # 针织开衫的针织衫
                      + r"|女(?:性|人)的女人味")  # 71 of the 1,464 candidates, none of the references
# 不会 + a merit ending the clause: what copy says it will not do is look bulky, not look slender;
# nor does it say what it does "not well" (不会很好的修饰腿型)
_DENIED_MERIT = re.compile(r"不会(?:显得|给人一种|让人|有|很)?" + _IN + r"{0,4}"
                           r"(?:修长|清新|时尚|有型|优雅|气质|高挑|纤细|甜美|青春|个性)" + _END
                           + r"|不会很好[的地]")
# 更加的 + a verb: 更加 takes an adjective ("更加的显瘦") and 更好地 a verb ("更好地修饰腿型")
_DEGREE_VERB = re.compile(r"(?:更加|更为)的(?:修饰|展现|显得|提升|勾勒|拉长|展示|打造|增添|营造|散发|彰显|突出|体现)")
# 显得 takes how it looks ("显得身材高挑", "显得很有气质"), not a bare thing: "显得整体的身材比例" (make
# demo, 2026-12-04). 1 of the 5,000 references ("显得女生阳光气质") and 1 of the Taobao descriptions.
_SEEMS_THING = re.compile(r"显得(?![很更十非特格越愈尤有极超颇分较比相])[^，。！？；、有,.!?;]{0,8}"
                          r"(?:比例|身材|曲线|线条|气质|身形|腿型|魅力|气息|韵味)" + _END)
# The same modal twice in one clause: "通勤还是逛街都可以穿搭都可以驾驭" (make demo, 2026-12-04); the
# references write "可以A也可以B" (left alone: 也 and 又 end the match), and once "轻松被轻松".
_MODAL_TWICE = re.compile(r"(都可以|都能|都会|轻松)(?:(?!也|又|还)" + _IN + r"){1,8}\1")
# Read blind in the demo model's rank-1 copies (2026-12-04, late night), none in the references or
# descriptions: "X又不失X" ("时尚又不失时尚感"), 很是 before 很 or a verb ("很是很好的", "能够很是修饰":
# the references write 很是显瘦), and two phrases run together ("适合各种身材都可以轻松驾驭")
_NOT_LACKING_ITSELF = re.compile(r"([\u4e00-\u9fff]{2})又不失\1")
_HENSHI = re.compile(r"很是(?:很|修饰|能)")
# a modal + 很好的 + a merit, with no 有 to have it: "不仅能够很好的包容性" (make demo, 2026-12-04, late night;
# the references write "有很好的包容性")
_MODAL_MERIT = re.compile(r"(?:能够|可以|能)(?:很好|更好)[的地](?:包容性|实用性|舒适性|透气性|层次感|设计感|时尚感|立体感)" + _END)
_DEGREE_EFFECT = re.compile(r"(?:更加|更为|非常|十分)的(?:效果|身材)" + _END)  # "看起来更加的效果" (非常好的效果 is fine)
_RUN_TOGETHER = re.compile(r"适合各种身材" + _IN + r"{0,3}都(?:可以|能)")
# 撞衫 (two people in the same clothes) is what copy helps you avoid; the model writes it for 撞色
# ("采用了撞衫的设计"): every one of the 23 in the references and descriptions follows 不, 避免, 降低...
_CLASH = "撞衫"
_CLASH_AVOIDED = re.compile(r"不|避免|降低|拒绝|担心|怕|免|防|少")

# A product introduced again in the sentence that introduced it: "这款外套设计感非常强，这是一件很有设计感的
# 牛仔外套", "这款的设计非常的经典，这一款开衫有多种穿搭方式" (two writers' openings chained; 4 of the 160
# rank-1 copies of eight make demo jobs, 2026-12-06). Of the 78 references that write 这是一款/件/条, 4 do
# so after a comma, none after an introduction; 1 of the 5,000 writes 这一款 after one, as broken
# ("这件纯色的翻领设计富有层次感，想要…，这一款纯色的蕾丝衬衫").
_INTRODUCED = re.compile(r"这款|这条|这件|此款|该款|这一[款件条]|这是一[款件条]")
_INTRODUCED_AGAIN = re.compile(r"这是一[款件条]|这一[款件条]")
_PERIOD = re.compile(r"[^。！？；!?;]+")  # a ； closes what was said too ("…；针织衫的好穿不必多说，这一件有新意的…")

# -- self_contradictions() --
# A cut called loose and fitted in one breath: "宽松的版型，修身显瘦" (11 of the demo model's 200 rank-1
# copies of the first validation products, 4.0% of their candidates; every blind reader counted it
# broken). People write 修身 for loose garments too (46 of the 291 references of products listed 宽松
# and 显瘦, "宽松的版型…起到了修身显瘦的作用"), so it is no contradiction of the attributes; within 8
# characters of each other, 10 of the 5,000 references say both ("宽松版型修身显瘦遮肉").
_LOOSE_AND_FITTED = re.compile(r"宽松[^。！？!?]{0,8}修身|修身[^。！？!?]{0,8}宽松")

# -- misplaced() --
# A part of the garment at the start of a clause (within its first _PART_AT characters: "这款衬衫的长袖设计"),
# and the part of the body it may flatter; an effect on a part of the body far from it is misplaced.
_CLAUSE = re.compile(_IN + "+")
_SENTENCE = re.compile(r"[^。！？!?]+")
_PARTS = (("领口", "颈"), ("领型", "颈"), ("领", "颈"), ("袖口", "臂"), ("袖", "臂"),
          ("裙摆", "下身"), ("下摆", "下身"), ("裤脚", "腿"), ("裤腿", "腿"), ("裤管", "腿"),
          ("吊带", "肩"), ("肩带", "肩"), ("腰头", "腰"), ("松紧腰", "腰"), ("连帽", "颈"),
          ("破洞", "洞"), ("印花", "饰"), ("碎花", "饰"), ("刺绣", "饰"), ("绣花", "饰"), ("图案", "饰"), ("做工", "饰"),
          ("面料", "料"), ("中长款", "长"), ("衣长", "长"),
          ("单排扣", "扣"), ("双排扣", "扣"), ("纽扣", "扣"), ("拉链", "扣"), ("门襟", "扣"))
# A hole (破洞), a print or embroidery (饰), the workmanship (做工), the fabric (料) and a top's length (长) are
# 2026-12-06's (afternoon): make demo's rank-1 copies credited "个性的破洞元素" with the figure's proportions,
# "碎花图案" with the waist, "精致的做工" and "高档西装面料" with the legs and "中长款的版型" with the neck, 7 of
# the 160 of eight seeded jobs. A hole may show the legs ("膝盖处的破洞设计，微微露出白皙的双腿") and a fabric drape
# over the figure, so neither is far from them; 1 more of the 5,000 references is flagged (an embroidered belt
# said to flatter the waist) and 1 fewer (显 is read as a verb of effect: "上身可显优美的脖颈线条和纤细的手臂"
# after a v领 is the neck's), 18 in all; 5 more of the 5,236 Taobao descriptions (333).
# Straps, waistbands and hoods are 2026-12-05's (night): make demo's harem trousers had "松紧腰头的设计，可以
# 很好的修饰腿型" in two of four jobs; no reference is flagged with them. The waist and hiding are
# 2026-12-05's (evening): blind readers of make demo's copy called "简洁的短袖设计，很好的遮住大腿上的
# 肉肉" and "采用了气质v领的设计，展现出女性的纤细腰肢" wrong cause and effect; no more of the 5,000
# references are flagged with them than without (2).
# The whole figure (身材比例, 身形) is 2026-12-05's (last night): blind readers of make demo's copy called
# "小立领的设计，在视觉上拉伸身材比例", "简洁的短袖设计，修饰身材曲线" and "喇叭袖口的设计…还能凸显挺拔身形"
# wrong cause and effect; 6 of the 160 rank-1 copies of eight jobs said one, and 1 more of the 5,000
# references is flagged with it (10 against 9). A collar, a sleeve or a hood does not shape the figure,
# nor 身材 alone (2026-12-06: "精致的小翻领，修饰颈部曲线，勾勒出纤细窈窕的身材" opened a shirt's make demo copy; 4
# more of the 5,000 references are flagged, 3 of the 160 rank-1 copies of eight jobs).
_BODY = {"身体轮廓": "身", "身高": "身", "高挑": "身", "脖颈": "颈", "颈": "颈", "锁骨": "颈", "手臂": "臂", "臂": "臂", "大长腿": "腿", "双腿": "腿", "大腿": "腿",
         "腿": "腿", "脚踝": "腿", "小蛮腰": "腰", "腰身": "腰", "腰肢": "腰", "腰线": "腰", "腰": "腰",
         "身材比例": "身", "身高比例": "身", "身材曲线": "身", "身形": "身", "身段": "身", "身材": "身"}
_FAR = {"颈": {"臂", "腿", "腰", "身"}, "臂": {"颈", "腿", "腰", "身"}, "下身": {"颈", "臂"}, "腿": {"颈", "臂", "腰"},
        "肩": {"腿", "腰", "身"}, "腰": {"颈", "臂", "腿"}, "饰": {"颈", "臂", "腿", "腰"}, "洞": {"颈", "臂", "腰", "身"},
        "料": {"颈", "臂", "腿"}, "长": {"颈", "臂"}, "扣": {"颈", "身"}}
# A closure (a row of buttons, a zip, the placket) shapes no figure and no neck: "单排扣的设计，不仅可以方便穿脱，
# 还能凸显挺拔身形" went to make demo's denim jacket in 1 of 8 seeded jobs' rank-1 copies (2026-12-06, evening);
# readers called it and a zip's "…，顺滑流畅，方便穿脱，还能凸显挺拔身形" wrong (that one, past a clause with a subject
# of its own, is not read). A wrap's buttons or a side zip may show the waist and a buttoned cuff the arm, as 4
# of the 5,000 references say: those stay unflagged (18 in all; 333 of the Taobao descriptions, as before).
# Straps do not shape the figure ("吊带设计，不仅能够修饰出修长的身材曲线" went to make demo's plaid slip dress in 3 of 8
# seeded short jobs, 2026-12-06, evening; both readers called it wrong), but a slip dress does ("修身吊带裙让身材更纤细
# 高挑", "内里吊带裙，更加贴合肌肤并修饰身材"): 吊带 before 裙, 衫 or 式 is the garment, not its straps. No more of the
# 5,000 references are flagged, nor of the Taobao descriptions.
_WHOLE_GARMENT = re.compile("吊带(?=[裙衫式])")
# The figure's outline and height are the whole figure too (2026-12-06, afternoon: "喇叭袖口的设计，…，还能够轻松修饰
# 身体轮廓更添高挑大气" went to make demo's chiffon top; no more of the 5,000 references are flagged).
# The effect's verb, then up to 4 characters to the body it names, or up to 8 to the legs ("短袖的款式，…，还能够
# 凸显出女性的十足大长腿" in make demo's rank-1 copy of a floral dress, twice on 2026-12-06; "吊带的设计，…，还能够
# 凸显出女性的十足大长腿"): no more of the 5,000 references are flagged with the legs so far off (18).
_EFFECT = re.compile(r"(?:修饰|拉长|勾勒|凸显|展现|露出|衬托|显露|突出|彰显|纤细|遮住|遮盖|遮挡|拉伸|提升|打造|显)"
                     r"(?:" + _IN + r"{0,4}?|" + _IN + r"{5,8}?(?=大长腿|双腿|大腿|腿|脚踝))"
                     r"(脖颈|颈|锁骨|手臂|臂|大长腿|双腿|大腿|腿|脚踝|小蛮腰|腰身|腰肢|腰线|腰|身材比例|身高比例"
                     r"|身材曲线|身材|身形|身段|身体轮廓|身高|高挑)")
_PART_AT = 8
_SHORT_CLAUSE = 10  # "领口的设计，" names the part alone; its effect is the next clause
# ...and the clauses after that one which begin with a verb or an adverb, having no subject of their
# own, go on saying what the part does: "小立领设计，修饰颈部曲线，勾勒出纤细的腰身" (two of make demo's
# rank-1 copies on 2026-12-05, night). Read so, the same 2 of the 5,000 references are flagged.
_SUBJECTLESS = re.compile(r"(?:修饰|拉长|勾勒|凸显|展现|露出|衬托|显|突出|彰显|遮|让|使|更|还|又|也|能|可以|给|增添|恰到好处|"
                          r"打造|尽显|轻松|很好|在视觉上|从视觉上|不仅)")
# Putting a garment on is made easier by a closure, elastic, an opening, straps or a loose cut; a
# sentence saying so with none of them credits what cannot ("九分裤长的设计，穿脱方便", "连帽的款式搭配，不仅
# 可以方便穿脱", "同时还方便裤子穿脱": make demo's copy, 2026-12-05, night). 7 of the 5,000 references say it
# so ("卫衣无疑是活力风的代表，穿脱方便的同时还很显年轻"), of the 296 sentences that say 穿脱. Of the collars, only
# a round neck (圆领) does in the references (5 sentences; 2026-12-06): "小立领的设计，…，加上中长的衣长，不仅可以
# 方便穿脱" went to make demo's trench coat, and 领 in the sentence had let it pass.
_EASES = re.compile("穿脱")
_EASE_CAUSES = re.compile("松紧|拉链|扣|门襟|系带|抽绳|宽松|开衫|开襟|套头|弹力|弹性|开衩|开叉|腰头|绑带|魔术贴|开口|橡筋|"
                          "皮筋|背带|吊带|圆领|肩|袖|裤口|裤脚|小脚|版型|廓形|侧开|侧面|带|口袋")
_NO_CAUSE = "无开合"
# A pocket does not make a garment easier to put on ("口袋设计，方便穿脱": 3 of the 1,464 candidates
# and 3 of make demo's rank-1 copies over three sessions; no reference or description), read over
# the rest of its sentence ("胸口袋设计，方便放置物品，方便穿脱") unless a closure stands between (the one
# reference that says so: "口袋美观实用，纽扣搭配拉链的经典开合，方便穿脱"). Nor does it flatter the
# figure, in its clause or the next ("口袋设计，可以很好的修饰身形"; no reference: "后片有一字口袋丰富
# 层次感，裤子缝纫技术精湛，线条流畅修饰腿型" is about the trousers).
_POCKET_CLAIMS = re.compile(r"口袋(?:(?!拉链|纽扣|扣|松紧|系带|开合|抽绳)[^。！？!?]){0,20}?"
                            r"(方便穿脱|穿脱方便|穿脱更加方便|穿脱更方便)"
                            r"|口袋" + _IN + r"{0,10}[，,]?" + _IN + r"{0,10}?(修饰(?:身形|身材|腿型|曲线|线条|脸型))")

# Nor is anything but a pocket where one puts one's hands or things: a sentence saying so that names no
# pocket before it credits what it names instead ("裤身版型采用微微的哈伦设计，方便插兜", "单排扣的设计，不仅可以
# 放置物品": 3 of the 160 rank-1 copies of eight make demo jobs and readers' wrong facts, 2026-12-06). 2 of the
# 5,000 references are flagged so ("背部设小包，可折叠存放更方便携带收纳"). 插兜 alone is the pocket itself (插兜设计).
_STORES = re.compile("(?:方便|便于|可以|能)插兜|插手|放置|置物|收纳|储物|随身物品|随身小物|小物品|放手机|放东西")
_POCKET = re.compile("袋|兜")
_NO_POCKET = "无口袋"
# Nor does a colour breathe or feel soft: a clause naming one and no fabric, then one saying how it wears
# ("浅蓝色的色系，清爽透气": 3 of the 160 rank-1 copies of eight make demo jobs, read as a wrong fact,
# 2026-12-06). 2 of the 5,000 references are flagged so ("色系饱满而细腻，更加亲肤的同时还有是身材").
_COLOUR = re.compile("色系|颜色|配色|色调|色的?$")
_FABRIC = re.compile("面料|材质|布料|质地|棉|麻|纱|丝|绒|毛|针织|牛仔|蕾丝|涤|料")
_WEARS = re.compile("透气|吸汗|排汗|亲肤|柔软|凉爽|保暖")
# Nor does a hole, a print or a cropped leg ("采用了小脚裤的设计版型，给你带来更加柔软舒适的穿着体验": make demo's jeans,
# 2026-12-06, afternoon). Ribbed cuffs do keep one warm ("罗纹裤脚小脚裤，保暖时尚"), so warmth is left to them. No more
# of the 5,000 references are flagged; a cut (版型) would flag 9 more, as people write it ("修身宽松版型，穿着柔软舒适透气").
_SHAPE = re.compile("破洞|印花|图案|格子|小脚")
_WARMTH = "保暖"
# Nor does a hole make it comfortable ("裤身的破洞元素，带来舒适的穿着体验": make demo's ripped jeans, 2026-12-06,
# afternoon, read as a wrong fact by both readers); none of the 5,000 references says so in the clause after one.
_HOLE = "破洞"
_COMFORT = re.compile("舒适|舒服|自在")


def unfinished(text: str) -> list[str]:
    """The openers (不仅, 不但, 不只, 不光) of text's sentences that never go on with 还, 也, 更, 且...,
    a 将, 让 or 使 for each clause that ends at what it takes, and what shows nothing ("很好的展现出来")."""
    found = []
    for sentence in _SENTENCES.findall(text):
        openers = list(_OPENERS.finditer(sentence))
        # each opener's promise is kept before the next opener ("不但十分的百搭时尚，…，不仅能够…，而且…":
        # the 而且 answers the 不仅, and the 不但 is left without one)
        for opener, after in zip(openers, [o.start() for o in openers[1:]] + [len(sentence)]):
            if not _FOLLOWERS.search(sentence, opener.end(), after):
                found.append(opener.group())
    return (found + ["既"] * len(_BOTH.findall(text)) + ["制成"] * len(_MADE_OF.findall(text))
            + ["让"] * len(_CAUSED_THING.findall(text))
            + ["将"] * (len(_BARE_JIANG.findall(text)) + len(_BARE_JIANG_FULLY.findall(text)))
            + _BARE_CAUSATIVE.findall(text) + _SHOWN_NOTHING.findall(text))


def leaves_open(clause: str) -> bool:
    """Whether a clause opens with 不仅 (不但, 不只, 不光) and does not go on itself ("不仅是打破了这款针织开衫的
    单调感"): the clause after it must (answers())."""
    openers = list(_OPENERS.finditer(clause))
    return bool(openers) and not _FOLLOWERS.search(clause, openers[-1].end())


def answers(clause: str) -> bool:
    """Whether a clause goes on from a 不仅 before it: it says 还, 也, 更, 且, 同时... ("还能凸显挺拔身形")."""
    return bool(_FOLLOWERS.search(clause))


def ungrammatical(text: str) -> list[str]:
    """The degree adverbs on a bare noun or a thing in text, each with what it qualifies ("更加的实用性",
    "非常的深蓝色"), the modal verbs whose verb takes 了 ("能够很好的提升了"), stacked comparatives
    ("更显得更加"), doubled nouns ("连衣裙的印花连衣裙", "身材的身形"), denied merits ("不会显得更加的修长"),
    a degree adverb on a verb ("更加的修饰"), 撞衫 written for 撞色 ("采用了撞衫的设计") and a product introduced
    again in the sentence that introduced it ("这款外套…，这是一件牛仔外套")."""
    return ([m.group() for m in _DEGREE_NOUN.finditer(text)
             if len(m.group(1)) > 1 and not m.group(1).endswith(_ADJECTIVES)]
            + _whole(text, _MODAL_PERFECTIVE, _STACKED, _DEGREE_THING, _DOUBLED, _DENIED_MERIT, _DEGREE_VERB)
            + _clashes(text) + _introduced_again(text)
            + _whole(text, _SEEMS_THING, _MODAL_TWICE, _NOT_LACKING_ITSELF, _HENSHI, _RUN_TOGETHER, _DEGREE_EFFECT,
                     _MODAL_MERIT))


def _whole(text: str, *patterns: re.Pattern[str]) -> list[str]:
    """Every whole match of each pattern in turn (findall would give a pattern's groups instead)."""
    return [m.group() for pattern in patterns for m in pattern.finditer(text)]


def _clashes(text: str) -> list[str]:
    """撞衫 for each one with no 不, 避免... in the 8 characters before it ("不想满大街羽绒服撞衫")."""
    return [_CLASH for m in re.finditer(_CLASH, text) if not _CLASH_AVOIDED.search(text, max(0, m.start() - 8), m.start())]


def _introduced_again(text: str) -> list[str]:
    """这是一款 or 这一款 (件, 条) for each clause that opens so after a clause of its sentence (or of its part
    before a ；) that opened with an introduction ("这款外套设计感非常强，这是一件很有设计感的牛仔外套")."""
    found = []
    for sentence in _PERIOD.findall(text):
        clauses = _CLAUSE.findall(sentence)
        for i, clause in enumerate(clauses):
            again = _INTRODUCED_AGAIN.match(clause)
            if again and any(_INTRODUCED.match(before) for before in clauses[:i]):
                found.append(again.group())
    return found


def self_contradictions(text: str) -> list[str]:
    """Each phrase that calls the cut loose and fitted at once ("宽松的版型，修身")."""
    return _LOOSE_AND_FITTED.findall(text)


def misplaced(text: str) -> list[str]:
    """"part→body" for each clause that says a part of the garment flatters a part of the body it
    does not reach ("袖口→脖颈"): the part near the clause's start, the effect in the same clause or,
    after a clause naming the part alone, in the next and the subjectless ones after it in its
    sentence; a sentence saying it is easy to put on that names nothing which makes it so
    ("无开合→穿脱"); a pocket said to make it easier to put on ("口袋→方便穿脱", in its sentence) or
    to flatter the figure ("口袋→修饰身形"); something holding one's things or hands in a sentence
    that names no pocket before it ("无口袋→放置"); and a colour, a hole, a print or a cropped leg said
    to breathe or feel soft in the clause after it ("颜色→透气", "小脚→柔软"), a hole comfortable ("破洞→舒适")."""
    found = [f"口袋→{m.group(1) or m.group(2)}" for m in _POCKET_CLAIMS.finditer(text)]
    for sentence in _SENTENCE.findall(text):
        if _EASES.search(sentence) and not _EASE_CAUSES.search(sentence):
            found.append(f"{_NO_CAUSE}→穿脱")
        clauses = _CLAUSE.findall(sentence)
        for i, clause in enumerate(clauses):
            stores = _STORES.search(clause)
            if (stores and not _POCKET.search(_STORES.sub("", clause))
                    and not any(_POCKET.search(before) for before in clauses[:i])):
                found.append(f"{_NO_POCKET}→{stores.group()}")
            wears = _WEARS.search(clause)
            if i and wears and not _FABRIC.search(clause) and not _FABRIC.search(clauses[i - 1]):
                shape = _SHAPE.search(clauses[i - 1])
                if _COLOUR.search(clauses[i - 1]):
                    found.append(f"颜色→{wears.group()}")
                elif shape and wears.group() != _WARMTH:
                    found.append(f"{shape.group()}→{wears.group()}")
            comfort = _COMFORT.search(clause)
            if (i and comfort and _HOLE in clauses[i - 1] and not wears
                    and not _FABRIC.search(clause) and not _FABRIC.search(clauses[i - 1])):
                found.append(f"{_HOLE}→{comfort.group()}")
            head = _WHOLE_GARMENT.sub(lambda m: "～" * len(m.group()), clause)[:_PART_AT]
            part = next(((word, region) for word, region in _PARTS if word in head), None)
            if part is None:
                continue
            effects = [_EFFECT.search(clause)]
            if len(clause) <= _SHORT_CLAUSE:
                effects += [_EFFECT.search(c) for c in _effect_clauses(clauses[i + 1:])]
            far = [e.group(1) for e in effects if e is not None and _BODY[e.group(1)] in _FAR[part[1]]]
            found += [f"{part[0]}→{far[0]}"] if far else []
    return found


def _effect_clauses(clauses: list[str]) -> list[str]:
    """The clause after a part's, and those after it that go on without a subject or a part of their own."""
    taken = []
    for clause in clauses:
        taken.append(clause)
        if not _SUBJECTLESS.match(clause) or any(word in clause for word, _ in _PARTS):
            break
    return taken
