"""Personal data is replaced by placeholders; product numbers that fail the checksums are kept."""

from __future__ import annotations

import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.redact import PLACEHOLDERS, id_card_valid, luhn_valid, redact

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_id_check(body17: str) -> str:
    """An 18-character ID number: body plus its ISO 7064 MOD 11-2 check character."""
    total = sum(int(d) * w for d, w in zip(body17, ID_WEIGHTS, strict=True))
    return body17 + "10X98765432"[total % 11]


def with_luhn_digit(body: str) -> str:
    """body plus the digit that makes the whole number pass Luhn."""
    for digit in string.digits:
        number = body + digit
        total = 0
        for i, d in enumerate(int(c) for c in reversed(number)):
            total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable")


VALID_ID = with_id_check("11010519491231002")  # ends in X
VALID_ID_DIGIT = with_id_check("44030119900307123")
VALID_CARD_16 = with_luhn_digit("622202020000123")
VALID_CARD_19 = with_luhn_digit("621700001000012345")


def test_the_helpers_build_numbers_the_checks_accept():
    assert VALID_ID.endswith("X")
    assert id_card_valid(VALID_ID) and id_card_valid(VALID_ID.lower()) and id_card_valid(VALID_ID_DIGIT)
    assert luhn_valid(VALID_CARD_16) and luhn_valid(VALID_CARD_19)
    assert not luhn_valid("1234567812345678")


@pytest.mark.parametrize(
    "text",
    [
        "联系我：13800138000",
        "手机 138 0013 8000 随时联系",
        "手机138-0013-8000",
        "+86 13800138000",
        "+86-138-0013-8000",
        "(+86)13800138000",
        "（+86）13800138000",
        "0086 13800138000",
        "8613800138000",
        "tel:19912345678",
    ],
)
def test_mainland_mobile_numbers_in_every_usual_spelling_become_the_phone_placeholder(text):
    redacted, counts = redact(text)
    assert counts == Counter(phone=1)
    assert "[电话]" in redacted
    assert not any(ch.isdigit() for ch in redacted)


@pytest.mark.parametrize(
    "text",
    ["座机010-62345678", "致电021-6234-5678转123", "（0755）1234567", "(0571) 88886666", "电话02112345678",
     "热线：075588886666"],
)
def test_landlines_with_an_area_code_become_the_phone_placeholder(text):
    redacted, counts = redact(text)
    assert counts == Counter(phone=1)
    assert not any(ch.isdigit() for ch in redacted), redacted


def test_a_bare_number_starting_with_zero_stays_without_a_phone_word_before_it():
    assert redact("订单号02112345678已发货") == ("订单号02112345678已发货", Counter())


@pytest.mark.parametrize(
    "address",
    ["zhang.san@example.com", "13800138000@qq.com", "Li_Si+shop@mail.example.com.cn"],
)
def test_email_addresses_become_the_email_placeholder_even_when_they_hold_a_phone_number(address):
    assert redact(f"请发邮件到{address}，谢谢") == ("请发邮件到[邮箱]，谢谢", Counter(email=1))


def test_an_id_number_with_a_valid_check_character_is_redacted_and_x_may_be_lower_case():
    assert redact(f"身份证号{VALID_ID}。") == ("身份证号[身份证]。", Counter(id_card=1))
    assert redact(f"身份证号{VALID_ID.lower()}") == ("身份证号[身份证]", Counter(id_card=1))
    assert redact(f"证件{VALID_ID_DIGIT}") == ("证件[身份证]", Counter(id_card=1))


def test_an_eighteen_digit_number_with_a_wrong_check_character_or_date_stays():
    wrong_check = VALID_ID_DIGIT[:-1] + str((int(VALID_ID_DIGIT[-1]) + 1) % 10)
    assert not id_card_valid(wrong_check)
    impossible_date = with_id_check("44030119901307123")  # month 13
    assert not id_card_valid(impossible_date)
    for number in (wrong_check, impossible_date):
        if luhn_valid(number):  # an 18-digit number may also pass Luhn, then it reads as a card
            continue
        assert redact(f"编号{number}") == (f"编号{number}", Counter())


def test_bank_card_numbers_passing_luhn_are_redacted_bare_or_in_groups_of_four():
    grouped = " ".join(VALID_CARD_16[i : i + 4] for i in range(0, 16, 4))
    assert redact(f"卡号{VALID_CARD_16}") == ("卡号[银行卡]", Counter(bank_card=1))
    assert redact(f"卡号：{grouped}") == ("卡号：[银行卡]", Counter(bank_card=1))
    assert redact(f"卡号 {VALID_CARD_19} 户名张三") == ("卡号 [银行卡] 户名张三", Counter(bank_card=1))
    dashed = "-".join([VALID_CARD_19[:4], VALID_CARD_19[4:8], VALID_CARD_19[8:12], VALID_CARD_19[12:16],
                       VALID_CARD_19[16:]])
    assert redact(dashed) == ("[银行卡]", Counter(bank_card=1))


def test_a_sixteen_digit_model_number_failing_luhn_stays():
    model = "1234567812345678"
    assert not luhn_valid(model)
    assert redact(f"型号{model}，正品保证") == (f"型号{model}，正品保证", Counter())


def test_digits_glued_to_latin_letters_are_a_product_code_not_a_card():
    assert redact(f"SN{VALID_CARD_16}") == (f"SN{VALID_CARD_16}", Counter())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("北京市朝阳区建国路88号", "[地址]"),
        ("寄到上海市黄浦区南京东路100弄5号302室，谢谢", "寄到[地址]，谢谢"),
        ("地址：广东省深圳市南山区科技园路1号A座10层", "地址：[地址]"),
        ("我住在杭州市西湖区文三路 90 号", "我住在[地址]"),
        ("阳光花园3栋502室", "[地址]"),
        ("5号楼2单元301室", "[地址]"),
    ],
)
def test_street_addresses_with_a_number_become_the_address_placeholder(text, expected):
    assert redact(text) == (expected, Counter(address=1))


@pytest.mark.parametrize(
    "text",
    [
        "2018新款韩版，长度105cm，腰围68cm，适合身高160-170",
        "原价299元，现价199元，满300减50，限时3天",
        "走在街头的3号模特，穿出马路上的回头率",
        "容量500ml，304不锈钢，保温12小时",
        "尺码S/M/L/XL，建议体重90-120斤",
        "已售10000件，好评率99%",
        "第3代升级款，12期免息，编号20190101",
    ],
)
def test_ordinary_product_copy_with_numbers_is_left_alone(text):
    assert redact(text) == (text, Counter())


def test_mixed_text_redacts_every_kind_and_counts_each():
    text = (
        f"联系人张三，手机13800138000或010-62345678，邮箱zhangsan@example.com，"
        f"身份证{VALID_ID}，退款到{VALID_CARD_16}，寄北京市海淀区中关村大街27号。型号1234567812345678。"
    )
    redacted, counts = redact(text)
    assert redacted == (
        "联系人张三，手机[电话]或[电话]，邮箱[邮箱]，身份证[身份证]，退款到[银行卡]，寄[地址]。型号1234567812345678。"
    )
    assert counts == Counter(phone=2, email=1, id_card=1, bank_card=1, address=1)


def test_redacting_twice_changes_nothing_more():
    once, _ = redact(f"电话13800138000，卡{VALID_CARD_16}，北京市朝阳区建国路88号")
    assert redact(once) == (once, Counter())


def test_every_placeholder_is_free_of_digits_so_later_rules_never_match_inside_one():
    assert all(not any(ch.isdigit() or ch == "@" for ch in p) for p in PLACEHOLDERS.values())


chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), max_size=30)


@settings(max_examples=60, deadline=None)
@given(before=chinese, after=chinese, second=st.sampled_from("3456789"),
       rest=st.text("0123456789", min_size=9, max_size=9))
def test_any_mobile_number_between_chinese_words_is_redacted(before, after, second, rest):
    number = "1" + second + rest
    redacted, counts = redact(before + number + after)
    assert redacted == before + "[电话]" + after
    assert counts == Counter(phone=1)


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Nd",), blacklist_characters="@"), max_size=60))
def test_text_without_digits_or_at_signs_is_returned_unchanged(text):
    assert redact(text) == (text, Counter())
