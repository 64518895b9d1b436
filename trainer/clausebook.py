"""The clauses of the training copy, for decoding that writes only clauses people wrote.

Why: a model trained for minutes on a few thousand pairs writes clauses whose every few characters
occur in its training copy, yet which no person would write ("抽与白色的衣身", "简约的吊带来了格纹理").
Drawing such a clause again (clause_floor, word_pairs) helps where another draw is clean, and on a
slow machine, whose model is trained for fewer steps, it rarely is. Decoding from the book, every
clause a row writes is one of its training copy's clauses, character for character; the model
still chooses which clauses, and in what order, token by token (trainer.generation.known).

The book is the set of distinct clauses (text between ，。！？； and the like) of the training copy,
saved in the checkpoint (FILE: one clause per line; tabs before its types joined by commas, its
facts and CONTINUES or nothing), without those that would carry another product's claims into any
copy: a clause with a digit (a size, a year, a percentage: "100%纯棉"), a doubled 的 or a rarely doubled
character (a typo: "更显腿腿长"), a character few copies use (a brand: "茵曼连衣裙"), with a word of Latin letters
that fewer than LATIN_COPIES copies use (a brand: "veromoda"; polo, v领 and a字 stay), or with a word
(jieba, two characters or more) that fewer than WORD_COPIES copies use and that holds no listed
value's name: what a few products alone have (四合扣, 毛绒绒, a 淡绿 trim, one writer's tie waist in
"收紧而系则显纤腰"), which no vocabulary lists and no check could read (a rare value's name is read by the
clause's facts, below). Nor does it keep a clause
torn where the data lost a character (trainer.data.Pair.torn: "卫衣的地方在于" and "让你在中也能自由出行" had <UNK>
in them) or cut off at a copy's end, nor one that names a garment of another type than its writer's,
unless it wears the two together (names_another_garment), nor one that leans on a clause of its
writer's that the book does not keep with it (leans_on_context: "这样的颜色非常的衬肤色", "这款裙子的腰头地方",
"裤脚的设计很特别"), nor one that describes a part of the garment its writer lists nothing of and
names no value (_describes_unlisted_part: "领口采用了v字造型" by a shirt listing no collar went to a
翻领 shirt, "前幅运用了个性的贴袋装饰" by a top listing no pocket to a denim jacket).
A product's own banned phrases remove the
clauses that contain one when it is decoded, so what the product excludes or does not state is never
written from the book either.

Each clause keeps the garment types (trainer.ngram.key_of: 上衣, 裙, 裤) of the products whose copy
wrote it, and a row writes only clauses of its own product's type (a product of no type, any): a
shirt is never given a skirt's "双层网纱裙摆", nor a sweater a 半身裙's clause.

Each clause also keeps the facts it says of the products whose copy wrote it: the attribute values
(key#value, 类型 aside) of its writer that it expresses (copygen.attributes.missing_values, the rules
of coverage). "黑色的选择可以从视觉上修饰你的体型" was written for 颜色#黑色 products, "宽松的版型" for
版型#宽松 ones, "采用纯棉材质打造" for a 材质#棉 jacket. A row writes a clause only if its product
states the facts of one of the clause's writers (facts_met: its values, title or description
express them); a clause one writer wrote without stating anything its words say is any product's
("修饰腿部线条", written for 图案#线条 products and for others). make demo's known-clauses copy gave
straight jeans "宽松的款式", a denim jacket "纯棉材质" and 职场 suit trousers "这款黑色的休闲运动裤"
from clauses their writers stated, and no vocabulary rule read them (docs/quality-log.md).
A writer's facts also hold any value the training products list that the clause names and its
writer's listing does not (_Values.unlisted): what the writer saw in the garment and did not list.
A dress listing no length wrote "这款连衣裙采用中长的版型设计"; the clause is for products that name
a 中长 length, not for every dress (make demo gave it to one of no stated length).
A clause saying something adjusts (调节) is only for products with a part that does (ADJUSTS), one
saying something holds one's things (放置物品) for products with a pocket (STORES), one speaking of a
child (彰显孩子可爱气质) for products naming one (WEARER), one placing a
pocket, a ruffle, a print or an elastic (胸前的口袋, 领口荷叶边, 胸前的印花, 裤腿的松紧口) only for
products that name the place (PLACE).
A book saved without facts (the first books, of early 2026-12-05) puts no condition on any clause.

Each clause also keeps the clauses that followed it in its writers' sentences (its followers: a
comma or ； between the two), which a row writing from the book goes on with by preference after
a comma (trainer.generation.known). Books saved before 2026-12-05, afternoon, have none.

Each clause also knows whether a writer began a sentence with it (a copy's first clause, or one after
a 。！？: STARTS), and a row begins a sentence only with one that a writer did, where its book has
one that goes on (make demo began sentences with "这款宽松的版型，", "休闲的风范。" and "而且还有些可爱的
气息在；", each written in mid-sentence). Books saved before 2026-12-05, evening, let any clause begin one.

A clause whose last word people rarely end a sentence on (设计, 版型, 口袋: a noun phrase that waits
for its verb) is marked as continuing: a row writes a ， after it, never a 。！？ or ； (make demo
ended sentences "阔腿裤的版型。", "腰部抽绳的设计。" and "黑色的设计；"). Books saved before have no such mark.

A clause that names no value and that no writer began a sentence with says something of what came
before it: an effect ("更是增添了实用性", "更显双腿修长") whose cause is its writer's previous clause (a
pocket, a cropped leg). Such a clause keeps its subjects: the attribute keys (裙款式, 裤长) whose values
its writers' previous clauses in the sentence named, or NOTHING where one named none; a row writes it
after a comma only where its own previous clause names a value of one of those keys, or nothing where
NOTHING is one (trainer.generation.known). make demo credited a flared cuff with long legs ("喇叭袖口的
设计，…双腿修长") and a lace hem with use ("蕾丝裙摆的设计，更是增添了实用性"): two readers named it
first of make demo's faults (2026-12-06). Books saved before 2026-12-06, afternoon, keep no subjects.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from copygen.attributes import load_vocab, missing_values, names_value, naming_forms, unstated_parts_named
from copygen.catalogue.attribute_parsing import parse_attributes
from copygen.compliance import fold
from copygen.prompt import SOURCE_JOINER
from trainer.ngram import ALL, key_of
from trainer.wordpairs import ended_clauses, words

FILE = "clauses.txt"
CONTINUES = "continues"  # the fourth column of a clause a sentence never ends on (books before 2026-12-05, night, have none)
STARTS = "starts"  # the sixth column of a clause a writer began a sentence with (books before 2026-12-05, evening, have none)
# the fifth column: the line numbers (from 0) of the clause's followers, joined by commas (books
# before 2026-12-05, afternoon, have no fifth column)
# the seventh column: an effect clause's subjects, joined by commas (books before 2026-12-06, afternoon, have none);
# NOTHING stands for a previous clause that named no value
NOTHING = "-"
LATIN_COPIES = 20  # a Latin word fewer copies use than this is read as a brand name
# a word fewer copies use than this names what a few products alone have: at 5 (until 2026-12-05,
# evening) make demo's copy kept 纤腰 (5 copies), 宽边 (14), 圆弧 (10); read blind at 20, with the
# evening's other changes, its garbled clauses fell from 26 to 15 and its wrong facts from 30 to 17 (docs/demo-model.md)
WORD_COPIES = 20
MIN_CHARS = 2  # shorter clauses (a lone 的) say nothing
MAX_CHARS = 40  # longer ones are run-ons that read as two clauses without a mark
ENDING_SEEN = 30  # a last word that ends fewer clauses than this says too little of how sentences end
ENDING_SHARE = 0.05  # a clause whose last word ends fewer sentences than this is continued, never ended
_FINAL = "。！？!?.~～…"  # what a whole copy ends with
_DIGIT = re.compile(r"\d")
# 的 twice is a typo: 21 of the 5,000 references, 8 of the demo book's clauses ("同时又散发着利落干练的的气质"
# went to make demo's wide trousers, 2026-12-05, evening); so is 比较的 (4 references, 4 clauses): "这款连衣裙
# 的版型比较的简单" opened 16 of the 160 rank-1 copies of eight make demo jobs (2026-12-05, late night); and
# 碎骨 for 锁骨 (1 reference: "露出迷人的碎骨与香肩" went to make demo's v-neck dress, 2026-12-06, night)
_TYPO = re.compile("的的|比较的|碎骨")
# So is a character written twice that fewer than DOUBLED_COPIES copies double: "更显腿腿长" (2 references) went
# to make demo's 小脚 jeans (2026-12-06); 满满, 微微 and 小小 are doubled by 271, 114 and 49 copies. jieba splits
# such a pair into single characters, so the rare-word rule (WORD_COPIES) never sees it. A pair across two
# words is no typo (另外|外套, 展现|现代, 品质|质感).
DOUBLED_COPIES = 3
_DOUBLED = re.compile(r"([\u4e00-\u9fff])\1")
# A character fewer copies than this use names what a few products alone have, where jieba splits it off
# as a word of one character the rare-word rule never reads: brands ("茵曼连衣裙在袖口以及裙摆处融入了荷叶边设计",
# "北冥鹰这款休闲裤精选优质面料打造") and details (绗缝, 芽边, 胸垫无钢托): 227 of the demo book's clauses
# (2026-12-06). A character of a listed value the clause names stays (八 of 八分裤).
CHAR_COPIES = 10
_HAN = re.compile(r"[\u4e00-\u9fff]")
_FOLLOWERS = re.compile(r"(\d+(,\d+)*)?")
_LATIN = re.compile(r"[A-Za-z]+")
_ATTRIBUTES = re.compile(r"[^\s#*]+#[^#*]+(\*[^\s#*]+#[^#*]+)*")  # copygen.prompt.attributes_text


# Words that hold a value's form without naming the value: 下半身 is no 半身裙, 进一步 no 一步裙,
# 撞衫 no 衫, 打破常规 no 常规 length (read in the demo book's clauses: each left a clause written
# for any product to products of that value alone).
_NOT_NAMING = re.compile("下半身|上半身|进一步|撞衫|打破常规")

# The garments of each type (trainer.ngram.key_of), and the words of its own that spell another's
# (a 衬衫裙 is a skirt, 裙裤 trousers). A clause naming another type's garment is kept for its type
# only where it wears it with this one (搭配, 内搭, 两件): the trousers' "性感的上衣" (its writer's
# two-piece set) went to make demo's wide trousers, and the tops' book held "大牌范十足的一款连衣裙".
_GARMENTS = {"上衣": re.compile("上衣|t恤|衬衫|衬衣|外套|卫衣|毛衣|针织衫|打底衫|风衣|夹克"),
             "裙": re.compile("裙"), "裤": re.compile("裤")}
_OWN_SPELLING = {"裙": re.compile("(上衣|t恤|衬衫|衬衣|卫衣|毛衣|针织|外套|背心)[式裙]"), "裤": re.compile("裙裤")}
_WORN_WITH = re.compile("搭|配上|配以|叠穿|一起|两件|套装|组合|掖")

# A clause that points back at what its writer said before it ("这样的颜色非常的衬肤色" after a green
# hoodie's colour, "这样的设计可以适应不同尺寸的身形" after an elastic waist, "在这种穿多了会热" after the
# season), or that sets a place for its writer's next clause to fill ("这款裙子的腰头地方，" before
# the pleats at the waist, "黑色的裙身上，" before what is sewn on it), reads as a non sequitur after
# any other clause: 93 of the 480 candidates of one make demo job (2026-12-05, afternoon) had one,
# after a trench coat's length, a pair of trousers' "样式是非常新颖的", a skirt's opening. Pointing
# at the product itself (这款, 这件, 此款) is not pointing back.
_POINTS_BACK = re.compile("这样|这种|这个|那种|那样|如此|此种")
_PLACE_WORDS = re.compile("(地方|部位|位置|之处|之间|部分|处|上|里|中)$")
# A clause that calls a part of the garment special and leaves how to its writer's next clause
# ("裤脚的设计很特别，一边是常规的…", "下摆的设计别致又独特", "腰部还进行了特别的处理") claims a detail
# its writer's product had: 7 of the 60 rank-1 copies of three make demo jobs (2026-12-05, evening)
# had one, each read blind as a wrong fact, straight jeans given a special 裤脚 among them; "裤脚独具设计感"
# went to elastic-waist harem trousers in four jobs of four, and the fabric is such a part: "这款连衣裙的面料十分特别"
# opened a lace dress's copy, its writer's next clause left out (2026-12-06).
_PART = re.compile("下摆|衣摆|裤脚|裤口|裙摆|腰部|腰头|腰间|领口|领部|领子|袖口|袖子|肩部|背部|后背|门襟|衣身|裙身|裤身|面料|布料")
_SPECIAL = re.compile("特别|独特|独具|别具一格|别致|特殊|别出心裁|与众不同|用心|巧妙")
# A frame for its writer's next clause ("面料的选择上，选用了…", "在简约的卫衣上，印上…") says nothing
# itself, and the book keeps none of its followers: make demo's jeans went on from one with whatever
# the model liked ("面料的选择上，是街头少女的良品噢", two jobs on 2026-12-05, night): 24 of the demo book's clauses.
_FRAME = re.compile("(?:^(?:而|还|也|同时|并且|而且|不管是)?|[裤衣套裙衫])在(?!视觉|身).{0,14}(?:上|中|方面|里)$"
                    "|(?:选择|设计|处理)[上中]$")
_NOT_A_FRAME = re.compile("融入|融合|点缀|绽放")
# A garment that looks like another ("带来了一种裙子的既视感": its writer's culottes, a skirt at a glance)
# is said of a product of the other kind; make demo gave it to a floral dress (2026-12-05, night).
_LOOKS_LIKE_A_GARMENT = re.compile("(?:裙|裤|衣|衫|套)[子装]?的[即既]视感")
# A garment's quality made a noun ("衬衫的干练", its writer's "衬衫的干练与裙子的浪漫") and a clause
# left at a 在 its writer went on from ("撞色的袖子设计在", "而且还有些可爱的气息在") say nothing alone:
# both opened or ended sentences of four of five make demo jobs (2026-12-05, night).
_QUALITY_AS_NOUN = re.compile("^[\u4e00-\u9fff]{0,3}(?:衫|衣|裙|裤|套)[子装]?的(?:干练|优雅|帅气|简约|俏皮|甜美|利落|"
                              "随性|慵懒|精致|浪漫|休闲)$")
_LEFT_AT_ZAI = re.compile("(?:气息|设计|感觉|味道|气质)在$")
# A clause saying what its writer's product is not ("这款牛仔裤装并不是直筒型的设计", "棉麻的质感不是透气") is
# about that product alone: the first went to straight-leg jeans, whose 直筒 it names (2026-12-05, night).
_NOT = re.compile("不是|并非|不属于")
# A part joined on with nothing said of it ("搭配上裙摆，" before its writer's "行走之间尽显宝贝的公主气质魅力") went to 3
# of the 20 rank-1 copies of make demo's final job (2026-12-06, afternoon: "搭配上裙摆，行走之间更加方便" for a denim
# pinafore), and so does a degree pointing back at what its writer said before ("而且，这么强的设计感，" after a
# top's sleeves and print).
_JOINED_BARE_PART = re.compile("^(?:搭配|配合|加上|配上|搭配上|结合|再加上|配以)(?:了|着)?"
                               "(?:裙摆|下摆|衣摆|袖口|领口|腰部|裤脚|裤腿|裙身|衣身|裤身|面料)$")
_SO_MUCH = re.compile("^(?:这么|那么)[\u4e00-\u9fff]{1,3}的")
# A reason ("不仅因为它可俏皮可通勤", "也因为它能很好地修饰腿型") is its writer's reason for what its writer claimed just
# before; after another writer's clause it explains nothing: "白色的裙身显得非常的仙，荷叶边的设计，不仅因为它可俏皮可通勤，
# 也因为它能很好地修饰腿型" went to make demo's shirt dress, read as broken by both readers (2026-12-06, evening).
_REASON = re.compile("^(?:不仅|也|正|是|就是|这是)?因为")

# A clause that says something adjusts ("可以自由调节", "可以根据身高来调节") is for a product with a
# part that does, whatever its writer listed: 125 of the 153 AdvertiseGen references writing 调节
# list one of these (the others name it in their copy alone). make demo gave a pleated midi skirt
# "可以自由调节". Its facts are then one of ADJUSTS#part (facts_met reads the part's name).
ADJUSTS = "调节"
_ADJUSTERS = ("抽绳", "系带", "背带", "松紧", "腰带", "绑带", "肩带", "吊带", "拉链", "扣")
# So a clause saying something holds one's things ("不仅可以放置物品", "也让置物变得容易") is for a product with
# a pocket: 25 of the demo book's clauses said it and named no pocket, so any product could write them, and
# make demo gave a denim jacket "单排扣的设计，不仅可以放置物品" (2026-12-06). Its facts are then one of STORES#袋 or #兜.
STORES = "收纳"
_STORING = re.compile("放置|置物|收纳|储物|存放|放手机|放东西|装东西|随身物品|随身小物|小物品|插手")
_HOLDERS = ("袋", "兜")
# So a clause about a child ("能够彰显孩子可爱气质", "让孩子行走的时候更加自由") is for a product that names one: 孩子
# is no blocked word (女孩子 is a young woman), and make demo gave light-blue adult jeans "能够彰显孩子可爱
# 气质" (2026-12-06). Its facts are then one of WEARER#孩子, #童 or #宝宝.
WEARER = "穿着者"
_CHILD = re.compile("(?<![女男])孩子")
_CHILDREN = ("孩子", "童", "宝宝")
# What a clause says that a product must have a way of meeting: (what the clause says, the fact's key,
# the values any one of which meets it).
_NEEDS = ((re.compile(ADJUSTS), ADJUSTS, _ADJUSTERS), (_STORING, STORES, _HOLDERS), (_CHILD, WEARER, _CHILDREN))

# Where a pocket is (两侧的口袋, 胸前的大口袋) is a fact no listing states: 212 of the 5,000 references
# name the place, and make demo gave a 口袋 hoodie "胸前的大口袋" and a pinafore "胸前的口袋自带光泽"
# (read as unlisted in every blind reading of 2026-12-05). A clause placing a pocket is for a product
# that names the place itself (PLACE#两侧).
PLACE = "位置"
# A pocket "at the side" (侧口袋, 侧插口袋: "衣身两个侧口袋的设计" went to a hoodie, 2026-12-05, afternoon)
# is placed too: its place is 侧; and a chest pocket (胸袋: "胸袋设计" went to a hoodie, evening), 胸.
# So is a ruffle (荷叶边, 木耳边: "胸前荷叶边装饰" went to a shirt dress whose listing places none, and
# readers took it for one at the hem, 2026-12-05, night; 34 clauses), where the waist, shoulders or
# neckline may be its place too. So is a print, an embroidery or a stripe ("胸前特色的印花充满艺术气息" and
# "前身个性印花装饰设计" went to a printed chiffon top listing no place, 2026-12-05, late night; 102 more clauses);
# and a 兜 as a 袋 ("侧边有插兜设计" went to a pinafore listing none, 2026-12-06); and lettering in other words
# than 字母 (文字, 数字, a coloured 字: "胸口的白色字" went to make demo's cotton shirt, 2026-12-06, night).
_PLACED_DETAIL = re.compile("(胸前|胸口|前胸|左胸|右胸|两侧|侧边|两边|双侧|身侧|侧面|腹部|前后|后面|后背|背后|臀部|腰间|前片|前身"
                            "|腰部|肩部|领口|胸部|侧(?=插?口?袋)|胸(?=袋))[^，。！？；]{0,8}?"
                            "(?:袋|兜|荷叶边|木耳边|印花|图案|刺绣|绣花|字母|文字|数字|色的?字|贴布|条纹|格纹)")
# An elastic or a drawstring at the leg or sleeve opening ("裤腿的松紧口设计", "裤脚运用了橡筋收紧") is placed too:
# its writers listed an elastic waist (松紧腰) or band, which the clause's 松紧 and 橡筋 name, so make demo gave
# elastic-waist harem trousers elastic cuffs in three jobs of four (2026-12-06). Its place is the opening.
_AT_AN_OPENING = re.compile("(裤腿|裤脚|脚口|裤口|袖口)[^，。！？；]{0,6}?(?:松紧|橡筋|抽绳|收紧)")
# A clause speaking a register ("裤子整体透露出稳重内敛的设计感", "牛仔外套优雅大方") is for products of one of its
# writer's styles, where its writer listed any: written for any product of its garment type, one writer's
# 稳重内敛 went to three of make demo's four trousers (casual, sexy and street), and readers counted a clash of
# register in most jobs (2026-12-06). 39% of the 160 rank-1 copies of eight seeded jobs had a register clause
# none of whose writers shared a style with the product, 13 of the 502 validation references.
STYLE = "风格"
# The words of a register or temperament; scripts/derive_avoided_words.py reads which a value's references avoid.
REGISTER_WORDS = ("甜美", "可爱", "少女", "俏皮", "减龄", "童趣", "淑女", "名媛", "温婉", "女人味", "知性", "高贵", "端庄", "帅气",
                  "酷帅", "街头", "不羁", "中性", "硬朗", "稳重", "内敛", "成熟", "干练", "性感", "妩媚", "浪漫", "温柔", "阳光",
                  "活力", "仙气", "很仙", "清新", "文艺", "复古", "休闲", "随性", "慵懒", "青春", "运动", "率性", "潇洒", "柔美",
                  "小女人", "优雅", "优雅气质", "女神", "洒脱", "学院", "通勤", "职场")
_REGISTER = re.compile("|".join(REGISTER_WORDS + ("奢华", "高级感")))  # and luxury, which no value's copy avoids
# A register clause whose writer listed no style is for products listing none: one writer's "裤子整体透露出稳重内敛的
# 设计感" (亚麻 harem trousers of no listed style) went to make demo's sexy wide-leg trousers in 4 of the 160 rank-1
# copies of eight seeded jobs and to its fresh linen shorts in 1 (2026-12-06, afternoon).
UNSTYLED = f"{STYLE}#"
Facts = tuple[frozenset[str], ...]  # a clause's writers' facts (key#value); () when any product may write it


class ClauseBook:
    """The distinct clauses of a training copy, in the order first written, each with the garment
    types of the products whose copy wrote it and the facts it says of them."""

    def __init__(self, entries: Iterable[tuple], continuing: Iterable[str] = (),
                 followers: Mapping[str, Iterable[str]] | None = None, starting: Iterable[str] | None = None,
                 subjects: Mapping[str, Iterable[str]] | None = None):
        """entries: (clause, types) or (clause, types, facts) for each time a copy wrote a clause:
        the types and the facts (key#value) the clause says of the product it was written for;
        continuing: the clauses a sentence never ends on (their last word ends too few of people's);
        followers: for a clause, the clauses that followed it in a sentence (those in the book kept);
        starting: the clauses a writer began a sentence with (None: a book that does not know, any);
        subjects: for an effect clause, the keys its writers' previous clauses named (NOTHING for none)."""
        types: dict[str, set[str]] = {}
        facts: dict[str, set[frozenset[str]]] = {}
        for clause, kinds, *said in entries:
            types.setdefault(clause, set()).update(t for t in kinds if t != ALL)
            facts.setdefault(clause, set()).add(frozenset(said[0]) if said else frozenset())
        self.clauses = list(types)
        self.types = [frozenset(types[c]) for c in self.clauses]
        self.facts: list[Facts] = [_fewest(facts[c]) for c in self.clauses]
        continuing = set(continuing)
        self.ends = [c not in continuing for c in self.clauses]  # whether a sentence may end on it
        starting = None if starting is None else set(starting)
        self.starts = [starting is None or c in starting for c in self.clauses]  # whether a sentence may begin with it
        place = {c: i for i, c in enumerate(self.clauses)}
        followers = followers or {}
        self.followers = [tuple(sorted({place[f] for f in followers.get(c, ()) if f in place})) for c in self.clauses]
        subjects = subjects or {}
        # empty for a clause any previous clause may come before (one that is no effect, or a book that does not know)
        self.subjects = [frozenset(subjects.get(c, ())) for c in self.clauses]
        self.torn = 0  # clauses collect() left out as torn, each time a copy wrote one
        self.other_garment = 0  # ... and as naming another type's garment (names_another_garment)
        self.leaning = 0  # ... and as leaning on a clause of its writer's (leans_on_context)
        self.unlisted_part = 0  # ... and as describing a part its writer lists nothing of
        self.styled = 0  # clauses speaking a register that a writer listing a style wrote (_in_register)

    def __len__(self) -> int:
        return len(self.clauses)

    @classmethod
    def collect(cls, pairs: Iterable[tuple]) -> ClauseBook:
        """The book of these (source, copy) or (source, copy, torn) pairs: their copy's clauses, less
        those that name another product's claims and those the copy has torn (trainer.data.Pair.torn:
        a clause that lost a character; or its last, where it was cut off), each with the types of
        the sources that wrote it and the facts it says of them."""
        pairs = [(source, copy, ended_clauses(copy), set(torn[0] if torn else ())) for source, copy, *torn in pairs]
        lost = [torn | _cut_off(copy, parts) for _, copy, parts, torn in pairs]
        # each copy's clauses (less the torn), each with its jieba words and whether it ends a sentence
        copies = [(key_of(source), [(c, words(c)[1:-1], end) for c, end in parts if c not in lost[n]])
                  for n, (source, _, parts, _) in enumerate(pairs)]
        latin_use = Counter(w.lower() for _, parts in copies for w in {w for c, _, _ in parts for w in _LATIN.findall(c)})
        latin = {w for w, n in latin_use.items() if n >= LATIN_COPIES}
        word_use = Counter(w for _, parts in copies for w in {w for _, ws, _ in parts for w in _content(ws)})
        doubled_use = Counter(d for _, parts in copies for d in {d for _, ws, _ in parts for d in _doubled(ws)})
        ending = _sentence_ends((ws[-1], end) for _, parts in copies for _, ws, end in parts if ws)
        writers = [source_attributes(source) for source, _, _, _ in pairs]
        values = _Values((k, v) for attributes, _ in writers for k, vs in attributes.items() for v in vs)
        common = {w for w, n in word_use.items() if n >= WORD_COPIES or values.in_word(w)}
        char_use = Counter(ch for _, parts in copies for ch in {ch for c, _, _ in parts for ch in _HAN.findall(c)})
        rare_chars = {ch for ch, n in char_use.items() if n < CHAR_COPIES}
        kept = [(n, kind, clause, ws) for n, (kind, parts) in enumerate(copies) for clause, ws, _ in parts
                if MIN_CHARS <= len(clause) <= MAX_CHARS and not _DIGIT.search(clause) and not _TYPO.search(clause)
                and all(doubled_use[d] >= DOUBLED_COPIES for d in _doubled(ws))
                and all(w.lower() in latin for w in _LATIN.findall(clause))
                and all(w in common for w in _content(ws))
                and not _rare_characters(clause, rare_chars, values)]
        apart = [names_another_garment(clause, kind) for _, kind, clause, _ in kept]
        leaning = [not out and leans_on_context(clause) for out, (_, _, clause, _) in zip(apart, kept)]
        unseen = [not (out or leans) and _describes_unlisted_part(clause, *writers[n], values)
                  for out, leans, (n, _, clause, _) in zip(apart, leaning, kept)]
        kept = [entry for entry, out, leans, hidden in zip(kept, apart, leaning, unseen) if not (out or leans or hidden)]
        followers: dict[str, set[str]] = {}
        for _, _, parts, _ in pairs:
            for (clause, end), (after, _) in itertools.pairwise(parts):
                if not end:
                    followers.setdefault(clause, set()).add(after)
        book = cls(((clause, (kind,), facts)
                    for n, kind, clause, _ in kept
                    for facts in _in_register(clause, writers[n][0],
                                              _with_parts(clause, said_facts(clause, writers[n][0])
                                                          | values.unlisted(clause, *writers[n])))),
                   continuing={clause for _, _, clause, ws in kept if ws and not ending.get(ws[-1], True)},
                   followers=followers,
                   starting={clause for _, _, parts, _ in pairs
                             for (clause, _), (_, ended) in zip(parts, [("", True), *parts[:-1]]) if ended})
        book.subjects = _subjects(book, [parts for _, _, parts, _ in pairs], writers, values)
        book.torn = sum(c in lost[n] for n, (_, _, parts, _) in enumerate(pairs) for c, _ in parts)
        book.other_garment = sum(apart)
        book.leaning = sum(leaning)
        book.unlisted_part = sum(unseen)
        book.styled = len({clause for n, _, clause, _ in kept if _styles_spoken(clause, writers[n][0])})
        return book

    def save(self, path: Path) -> None:
        path.write_text("".join(f"{c}\t{','.join(sorted(t))}\t{_facts_text(f)}\t{'' if end else CONTINUES}"
                                f"\t{','.join(map(str, after))}\t{STARTS if start else ''}\t{','.join(sorted(keys))}\n"
                                for c, t, f, end, after, start, keys in zip(self.clauses, self.types, self.facts,
                                                                            self.ends, self.followers, self.starts,
                                                                            self.subjects)),
                        encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ClauseBook:
        lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
        if any(len(parts) not in (2, 3, 4, 5, 6, 7) or parts[3:4] not in ([], [""], [CONTINUES])
               or not _FOLLOWERS.fullmatch("".join(parts[4:5])) or parts[5:6] not in ([], [""], [STARTS])
               for parts in lines):
            raise ValueError(f"expected a clause, its types, its facts, {CONTINUES!r} or nothing, its followers' "
                             f"line numbers, {STARTS!r} or nothing and its subjects, split by tabs, on every line")
        entries = []
        for clause, types, *facts in lines:  # one entry per writer's facts: _fewest keeps them all
            kinds = types.split(",") if types else ()
            entries.extend([(clause, kinds, s) for s in _facts_of(facts[:1])] or [(clause, kinds)])
        followers = {parts[0]: [lines[int(i)][0] for i in parts[4].split(",") if i and int(i) < len(lines)]
                     for parts in lines if parts[4:5] not in ([], [""])}
        starting = [parts[0] for parts in lines if parts[5:6] == [STARTS]] if any(len(p) >= 6 for p in lines) else None
        subjects = {parts[0]: parts[6].split(",") for parts in lines if parts[6:7] not in ([], [""])}
        return cls(entries, continuing=[parts[0] for parts in lines if parts[3:4] == [CONTINUES]], followers=followers,
                   starting=starting, subjects=subjects)


def source_attributes(source: str) -> tuple[dict[str, list[str]], str]:
    """(attributes, the rest) of a prompt's source (copygen.prompt.source_text): the part that reads
    as key#value attributes, and the title and description around it."""
    attributes: dict[str, list[str]] = {}
    rest = []
    for part in source.split(SOURCE_JOINER):
        if not attributes and _ATTRIBUTES.fullmatch(part):  # as attributes_text writes them, not a title's "#1"
            try:
                attributes = parse_attributes(part)
                continue
            except ValueError:  # a value of blanks only: read the part as text
                pass
        rest.append(part)
    return attributes, " ".join(rest)


def names_another_garment(clause: str, kind: str) -> bool:
    """Whether a clause written for a garment of this type names one of another type, not worn with it."""
    if kind not in _GARMENTS:  # a product of no type
        return False
    folded = fold(clause)
    own = _OWN_SPELLING.get(kind)
    if own is not None:
        folded = own.sub("|", folded)
    return (any(rule.search(folded) for other, rule in _GARMENTS.items() if other != kind)
            and not _WORN_WITH.search(folded))


def leans_on_context(clause: str) -> bool:
    """Whether a clause means something only beside its writer's own: it points back (这样, 这种...),
    it calls a part special and leaves how to the next ("裤脚的设计很特别"), it frames the next
    ("面料的选择上"), it says the garment looks like another ("裙子的既视感"), it is a quality made a
    noun or left at a 在 ("衬衫的干练", "可爱的气息在"), it says what the product is not ("并不是直筒型的
    设计"), it joins a part on with nothing said of it ("搭配上裙摆") or a degree points back ("这么强的设计感"),
    or it is a place and nothing more (a clause ending on 上, 处, 地方... with no
    verb, adjective or adverb: "黑色的裙身上", not "穿在身上"), or it gives a reason ("不仅因为它可俏皮可通勤")."""
    if _POINTS_BACK.search(clause) or (_PART.search(clause) and _SPECIAL.search(clause)):
        return True
    if (_FRAME.search(clause) and not _NOT_A_FRAME.search(clause)) or _LOOKS_LIKE_A_GARMENT.search(clause):
        return True
    if _QUALITY_AS_NOUN.search(clause) or _LEFT_AT_ZAI.search(clause) or _NOT.search(clause):
        return True
    if _JOINED_BARE_PART.search(clause) or _SO_MUCH.search(clause) or _REASON.search(clause):
        return True
    if not _PLACE_WORDS.search(clause):
        return False
    return not any(tag[:1] in ("v", "a", "d") for _, tag in _tagged(clause))


def _describes_unlisted_part(clause: str, attributes: Mapping[str, Sequence[str]], rest: str, values: _Values) -> bool:
    """Whether the clause names a part of the garment (the vocabulary's parts: a collar, a cuff, a
    print, a pocket) that its writer, with these attributes and this title and description, states
    nothing of, and names no value: it describes what its writer saw and did not list ("领口采用了v字
    造型", "胸前的小象图案", "袖口采用同材质扣"), which no fact of the clause can hold a product to. One
    naming a value ("裤子的腰身处采用的是抽绳设计") is for products that state it (said_facts, unlisted)."""
    if not unstated_parts_named(clause, attributes, said=rest):
        return False
    return not (said_facts(clause, attributes) or values.unlisted(clause, attributes, rest))


def _tagged(clause: str) -> list[tuple[str, str]]:
    """clause's jieba words with their part-of-speech tags."""
    import jieba.posseg  # heavy: loads its dictionary on first use, never at import

    jieba.setLogLevel(logging.WARNING)  # jieba sets its own logger to DEBUG at import
    return [(pair.word, pair.flag) for pair in jieba.posseg.lcut(clause)]


def _with_parts(clause: str, facts: frozenset[str]) -> list[frozenset[str]]:
    """The writer's facts and what the clause says that no listing does: where it says something
    adjusts, each way of meeting them with a part that does (ADJUSTS); where it says something holds
    one's things, with a pocket (STORES); where it speaks of a child, with a child's (WEARER); where
    it places a pocket, a ruffle, a print or a stripe, or an elastic at an opening, the place (PLACE)."""
    ways = [facts]
    for says, key, meeting in _NEEDS:
        if says.search(clause):
            ways = [way | {f"{key}#{value}"} for way in ways for value in meeting]
    places = {f"{PLACE}#{m.group(1)}" for pattern in (_PLACED_DETAIL, _AT_AN_OPENING) for m in pattern.finditer(clause)}
    return [way | places for way in ways]


def _in_register(clause: str, attributes: Mapping[str, Sequence[str]], ways: list[frozenset[str]]) -> list[frozenset[str]]:
    """The ways of meeting a clause's facts, each with one of its writer's styles where the clause speaks
    a register (_REGISTER), or with UNSTYLED where its writer listed none."""
    if not _REGISTER.search(clause):
        return ways
    styles = [f"{STYLE}#{style}" for style in attributes.get(STYLE, [])] or [UNSTYLED]
    return [way | {style} for way in ways for style in styles]


def _styles_spoken(clause: str, attributes: Mapping[str, Sequence[str]]) -> Sequence[str]:
    """The writer's styles, where the clause speaks a register (_REGISTER); else none."""
    return attributes.get(STYLE, []) if _REGISTER.search(clause) else []


def _subjects(book: ClauseBook, copies: Sequence[list[tuple[str, bool]]],
              writers: Sequence[tuple[Mapping[str, Sequence[str]], str]], values: _Values) -> list[frozenset[str]]:
    """Per clause of the book: where it is an effect (it names no value and no writer began a sentence
    with it), the keys whose values its writers' previous clauses in the sentence named (NOTHING for
    one naming none); else none. copies: each copy's clauses (ended_clauses), writers its source's
    attributes and the rest."""
    effects = {c for c, facts, start in zip(book.clauses, book.facts, book.starts) if not facts and not start}
    found: dict[str, set[str]] = {}
    for parts, (attributes, rest) in zip(copies, writers):
        for (before, ended), (clause, _) in itertools.pairwise(parts):
            if not ended and clause in effects:
                named = said_facts(before, attributes) | values.unlisted(before, attributes, rest)
                found.setdefault(clause, set()).update(keys_named(named))
    return [frozenset(found.get(c, ())) for c in book.clauses]


def keys_named(facts: Iterable[str]) -> frozenset[str]:
    """The keys of these facts (key#value), or NOTHING for none: what a clause saying them is the subject
    of an effect as, both where the book keeps an effect's subjects and where decoding reads a row's."""
    return frozenset(fact.partition("#")[0] for fact in facts) or frozenset({NOTHING})


def said_facts(clause: str, attributes: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The product's attribute values (key#value, the vocabulary's skip keys aside) the clause expresses."""
    vocab = load_vocab()
    shown = {k: v for k, v in attributes.items() if k not in vocab.skip_keys}
    missing = set(missing_values(clause, shown, vocab=vocab))
    return frozenset(f"{k}#{v}" for k, values in shown.items() for v in values if v not in missing)


class _Values:
    """The attribute values the training products list (skip keys aside), to find which ones a
    clause names (copygen.attributes.names_value) whether or not its writer listed them."""

    def __init__(self, found: Iterable[tuple[str, str]]):
        """found: (key, value) pairs; a value keeps the first key it was listed under."""
        vocab = load_vocab()
        self.key: dict[str, str] = {}
        for key, value in found:
            if key not in vocab.skip_keys and value.strip():
                self.key.setdefault(value.strip(), key)
        # each way of naming a value, under the first character of its first word: a clause need
        # only try the values one of whose forms begins with a character it has
        self.forms: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for value in self.key:
            for form in naming_forms(value, vocab):
                self.forms.setdefault(form[0][0], []).append((value, form))
        self._named: dict[str, frozenset[str]] = {}

    def in_word(self, word: str) -> bool:
        """Whether a word holds a listed value's name of two characters or more (小熊 of 小熊印花):
        a clause saying it is for products that state the value (unlisted), however rare the word."""
        folded = fold(word)
        return any(len(form) == 1 and len(form[0]) >= 2 and form[0] in folded
                   for ch in set(folded) for _, form in self.forms.get(ch, ()))

    def named(self, clause: str) -> frozenset[str]:
        """The listed values the clause names."""
        if clause not in self._named:
            folded = _NOT_NAMING.sub("|", fold(clause))
            candidates = {v for ch in set(folded) for v, form in self.forms.get(ch, ())
                          if all(w in folded for w in form)}
            vocab = load_vocab()
            self._named[clause] = frozenset(v for v in candidates if names_value(folded, v, vocab))
        return self._named[clause]

    def unlisted(self, clause: str, attributes: Mapping[str, Sequence[str]], rest: str) -> frozenset[str]:
        """The values (key#value) the clause names that its writer, with these attributes and this
        title and description, does not: what its writer saw and did not list (a 中长 length, a
        连体 cut). A product must name them to write the clause, as it must its writer's facts."""
        named = self.named(clause)
        if not named:
            return frozenset()
        said = _said(attributes, rest)
        vocab = load_vocab()
        return frozenset(f"{self.key[v]}#{v}" for v in named if not names_value(said, v, vocab))


def facts_met(source: str, facts: Sequence[str]) -> list[bool]:
    """For each fact (key#value): whether the product of this source names its value, in its
    attributes, title or description (copygen.attributes.names_value: a 米白色 names 白色, a 纯棉
    shirt no 牛仔布); UNSTYLED, whether it lists no style."""
    attributes, rest = source_attributes(source)
    said = _said(attributes, rest)
    vocab = load_vocab()
    return [not attributes.get(STYLE) if fact == UNSTYLED else names_value(said, fact.partition("#")[2], vocab)
            for fact in facts]


def _said(attributes: Mapping[str, Sequence[str]], rest: str) -> str:
    """What a product says of itself: its title and description, and its attribute values."""
    return " ".join([rest, *(v for values in attributes.values() for v in values)])


def _fewest(sets: set[frozenset[str]]) -> Facts:
    """The writers' facts a product must meet one of: none, where one writer stated nothing the clause
    says; else each set no smaller one is inside (meeting it meets its supersets)."""
    if frozenset() in sets:
        return ()
    return tuple(sorted((s for s in sets if not any(o < s for o in sets)), key=sorted))


def _facts_text(facts: Facts) -> str:
    return json.dumps([sorted(s) for s in facts], ensure_ascii=False) if facts else ""


def _facts_of(column: list[str]) -> list[frozenset[str]]:
    """The sets of facts in a saved book's third column: none for an empty one, or a book saved without facts."""
    if not column or not column[0]:
        return []
    sets = json.loads(column[0])
    if not isinstance(sets, list) or not all(isinstance(s, list) and all(isinstance(f, str) for f in s) for s in sets):
        raise ValueError(f"expected a JSON list of lists of key#value facts, not {column[0]!r}")
    return [frozenset(s) for s in sets]


def _cut_off(copy: str, parts: list[tuple[str, bool]]) -> set[str]:
    """The last of a copy's clauses (ended_clauses) where it stops without a mark ending a sentence:
    cut off where the data was truncated ("复古的典雅气质也是一点都不", "纯色的下"), 46 of the 5,000
    AdvertiseGen copies."""
    return {parts[-1][0]} if parts and copy.rstrip()[-1] not in _FINAL else set()


def _rare_characters(clause: str, rare: set[str], values: _Values) -> bool:
    """Whether the clause has a rare character (CHAR_COPIES) that no listed value it names holds."""
    found = {ch for ch in _HAN.findall(clause) if ch in rare}
    return bool(found) and not all(any(ch in value for value in values.named(clause)) for ch in found)


def _doubled(clause_words: list[str]) -> list[str]:
    """The characters a clause writes twice in a row (its jieba words): inside a word (满满), or as two
    words of one character each ("更显腿腿长"); not a pair across two longer words (另外外套)."""
    inside = [m.group() for w in clause_words for m in _DOUBLED.finditer(w)]
    alone = [a + b for a, b in itertools.pairwise(clause_words) if len(a) == len(b) == 1 and a == b and _DOUBLED.fullmatch(a + b)]
    return inside + alone


def _content(clause_words: list[str]) -> list[str]:
    """A clause's jieba words of two characters or more, Latin words left to their own rule."""
    return [w for w in clause_words if len(w) >= 2 and not _LATIN.fullmatch(w)]


def _sentence_ends(last_words: Iterable[tuple[str, bool]]) -> dict[str, bool]:
    """For each word that ends ENDING_SEEN clauses or more ((last word, whether its clause ended a
    sentence), one per clause written): whether people end a sentence on it, in ENDING_SHARE of
    them or more. 设计 ends 3,258 clauses of the demo's training copy and 1.9% of sentences, 版型 582
    and 3.1%, 口袋 128 and none; 气质 784 and 67%."""
    seen: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for word, end in last_words:
        seen[word] += 1
        ended[word] += end
    return {w: ended[w] >= ENDING_SHARE * n for w, n in seen.items() if n >= ENDING_SEEN}
