"""Citizen ID numbers (公民身份号码, GB 11643-1999): the check digit, the birth date inside, and the
mask every role but admin sees. A ledger carries hundreds of them; a typo in one is caught here, at
import or edit, instead of on a contract the household signs."""

import re
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
SHAPE_RE = re.compile(r"^\d{17}[\dX]\Z")
MASK_RE = re.compile(r"^\d{4}\*{10}[\dX]{4}\Z")
EARLIEST = date(1880, 1, 1)


def check_digit(first17):
    """The 18th character for the first 17 digits (ISO 7064 MOD 11-2)."""
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def normalise(text):
    """Spaces dropped and a lower-case x raised: how people type and Excel stores the number."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        return ""
    return re.sub(r"[\s\u3000]", "", text).upper()


def problem(text, today=None):
    """None when `text` (normalised) is a valid 18-character number, else (zh, en) saying why:
    its shape, its birth date (a real day, not in the future) or its check digit."""
    if not SHAPE_RE.match(text or ""):
        return ("身份证号码须为 18 位（最后一位可为 X）", "An ID number has 18 characters (the last may be X)")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return ("身份证号码中的出生日期不存在", "The birth date inside the ID number does not exist")
    if born < EARLIEST or born > (today or date.today()):
        return ("身份证号码中的出生日期不可能", "The birth date inside the ID number is impossible")
    if check_digit(text[:17]) != text[17]:
        return ("身份证号码校验位不正确（可能有输错的数字）",
                "The ID number's check digit is wrong (a digit may be mistyped)")
    return None


def is_valid(text, today=None):
    return problem(normalise(text), today) is None


def birth_date(text):
    """The birth date an ID number carries, as "YYYY-MM-DD" (the number must be valid)."""
    return f"{text[6:10]}-{text[10:12]}-{text[12:14]}"


def sex_of(text):
    """The 17th digit: odd for men, even for women."""
    return "male" if int(text[16]) % 2 else "female"


def mask(text):
    """4306**********1234: the first four and last four characters stay (the county and a check a
    person can read back), the birth date and sequence are hidden."""
    if not text:
        return ""
    text = str(text)
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def is_masked(text):
    return isinstance(text, str) and bool(MASK_RE.match(text))
