"""Personal data out of training text, before anything is trained on it.

``redact(text)`` replaces what identifies a person with a placeholder and counts what it replaced:

==========  ==========  ==================================================================
kind        placeholder what is matched
==========  ==========  ==================================================================
email       [邮箱]      name@domain.tld (first: "13800138000@qq.com" is one e-mail address)
id_card     [身份证]    18-character resident ID (17 digits + digit or X) whose birth date
                        is a real date and whose ISO 7064 MOD 11-2 check character is right
bank_card   [银行卡]    16-19 digits, bare or in groups of four, passing the Luhn check
phone       [电话]      mainland mobiles (1[3-9]x xxxx xxxx, with +86/0086/86, spaces or dashes)
                        and landlines with an area code (010-12345678, (0755)1234567,
                        "电话02112345678")
address     [地址]      a street with a number (建国路88号, 南京东路100弄5号302室) with the
                        province/city/district before it, or a building and room (3栋502室)
==========  ==========  ==================================================================

Checksums keep product data: a 16-digit model number that fails Luhn, or an 18-digit code that
fails MOD 11-2, stays. A landline without a separator after its area code counts only next to a
word such as 电话/座机/tel, because a bare ten- or eleven-digit number starting with 0 is as
often an order or model number. Digits glued to Latin letters (SN6222...) are a product code,
not a card. Numbers are matched on digits only, so redact normalised text
(copygen.textnorm.normalise turns full-width digits into ASCII ones).
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Callable

PLACEHOLDERS = {
    "email": "[邮箱]",
    "id_card": "[身份证]",
    "bank_card": "[银行卡]",
    "phone": "[电话]",
    "address": "[地址]",
}
KINDS = tuple(PLACEHOLDERS)

_NEEDS_A_LOOK = re.compile(r"[\d@]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # check character for (weighted sum mod 11) = 0..10

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}[ -]?(?:18|19|20)\d{6}[ -]?\d{3}[0-9Xx](?![0-9A-Za-z])")
# 16-19 digits in one run, or in groups of four (6222 0202 0000 1234 567); group 2 = the tail
_BANK_CARD = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{16,19}|(\d{4}(?:[ -]\d{4}){3})([ -]\d{1,3})?)(?![0-9A-Za-z])"
)
_PREFIX_86 = r"(?:[(（]?(?:\+|00)?86[)）]?[ -]?)"
_MOBILE = re.compile(rf"(?<![\d+]){_PREFIX_86}?1[3-9]\d(?:[ -]?\d{{4}}){{2}}(?!\d)")
_AREA = r"0(?:10|2\d|[3-9]\d{2})"  # 010, 02x, then four-digit codes 03xx-09xx
_LOCAL = r"[1-9]\d{2,3}[ -]?\d{4}(?:(?:-|转|ext\.?)\d{1,5})?"  # 7-8 digits, an optional extension
_LANDLINE = re.compile(rf"(?<!\d)(?:[(（]{_AREA}[)）][ -]?|{_AREA}[ -]){_LOCAL}(?!\d)")
_LANDLINE_BARE = re.compile(
    rf"((?:电话|座机|固话|热线|联系|tel|Tel|TEL|phone|Phone)[:：]?\s?)({_AREA}[1-9]\d{{6,7}})(?!\d)"
)

# Address: no word that usually precedes an address (在/住/寄到...) may be part of its name, or
# "我住在北京市..." would lose "住在" too.
_CH = r"(?:(?![在于住到从是的往去为址寄送收])[\u4e00-\u9fff])"
_ADMIN = rf"(?:{_CH}{{1,6}}?(?:省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗|镇|乡|街道))"
_STREET = rf"(?:(?:{_CH}|[0-9A-Za-z]){{1,12}}?(?:路|街|大道|大街|巷|胡同))"
_UNIT = r"(?:号楼|号院|号|弄|栋|幢|座|单元|楼|层|室|户)"
_TAIL = rf"(?:\s?[0-9A-Za-z]{{1,5}}(?:-\d{{1,4}})?\s?{_UNIT})*"
_ESTATE = rf"(?:{_CH}{{2,8}}?(?:小区|花园|公寓|大厦|家园|新村|苑))"
_ADDRESS = re.compile(
    rf"{_ADMIN}*{_STREET}\s?\d{{1,5}}(?:-\d{{1,4}})?\s?(?:号|弄){_TAIL}"
    rf"|{_ADMIN}*{_ESTATE}?(?<!\d)\d{{1,4}}\s?(?:号楼|栋|幢|座)(?:\s?\d{{1,3}}\s?单元)?\s?\d{{2,5}}\s?(?:室|号|户)"
)


def redact(text: str) -> tuple[str, Counter]:
    """``text`` with personal data replaced by placeholders, and how many of each kind."""
    counts: Counter[str] = Counter()
    if not _NEEDS_A_LOOK.search(text):
        return text, counts  # every rule needs a digit or an '@'; most copy has neither
    for kind, pattern, replace in _RULES:
        text = pattern.sub(lambda m, kind=kind, replace=replace: _count(m, kind, replace, counts), text)
    return text, counts


def id_card_valid(number: str) -> bool:
    """An 18-character mainland resident ID: a real birth date and the MOD 11-2 check character."""
    digits = number.replace(" ", "").replace("-", "").upper()
    if len(digits) != 18 or not digits[:17].isdigit():
        return False
    try:
        datetime.date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return digits[17] == _ID_CHECK[total % 11]


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check that every bank card number passes."""
    digits = [int(d) for d in number if d.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return bool(digits) and total % 10 == 0


def _count(match: re.Match, kind: str, replace: Callable[[re.Match], str | None], counts: Counter) -> str:
    result = replace(match)
    if result is None:
        return match.group(0)
    counts[kind] += 1
    return result


def _whole(kind: str) -> Callable[[re.Match], str]:
    return lambda m: PLACEHOLDERS[kind]


def _id_card(m: re.Match) -> str | None:
    return PLACEHOLDERS["id_card"] if id_card_valid(m.group(0)) else None


def _bank_card(m: re.Match) -> str | None:
    if luhn_valid(m.group(0)):
        return PLACEHOLDERS["bank_card"]
    grouped, tail = m.group(1), m.group(2)
    if tail and luhn_valid(grouped):  # a 16-digit card followed by an unrelated short number
        return PLACEHOLDERS["bank_card"] + tail
    return None


def _landline_bare(m: re.Match) -> str:
    return m.group(1) + PLACEHOLDERS["phone"]


_RULES: tuple[tuple[str, re.Pattern, Callable[[re.Match], str | None]], ...] = (
    ("email", _EMAIL, _whole("email")),
    ("id_card", _ID_CARD, _id_card),
    ("bank_card", _BANK_CARD, _bank_card),
    ("phone", _MOBILE, _whole("phone")),
    ("phone", _LANDLINE, _whole("phone")),
    ("phone", _LANDLINE_BARE, _landline_bare),
    ("address", _ADDRESS, _whole("address")),
)
