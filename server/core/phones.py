"""Phone numbers as people type and keep them: one rule for households, accounts and rosters.

A mainland mobile (11 digits, 1[3-9]...) or a landline with its area code (0730-5123456). What a
Chinese input method types (full-width digits and dashes, brackets around the area code, a +86 or
86 prefix, spaces) is normalised to ASCII first; any other script's digits are refused, so the
same number is accepted, or refused, wherever it is entered."""

import re
import unicodedata

MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}\Z")
LANDLINE_RE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}\Z")
_SPACES_AND_BRACKETS = re.compile(r"[\s()（）]")


def normalise(raw, *, landline=True):
    """'' for a blank value, the number as stored (a mobile as 11 digits, a landline as written,
    with its dash if it had one), or None when it is not a phone (a landline only counts when
    `landline` is true: accounts keep a mobile)."""
    if not isinstance(raw, str):
        return None
    text = unicodedata.normalize("NFKC", raw)  # full-width １３８ and － become 138 and -
    text = _SPACES_AND_BRACKETS.sub("", text).replace("—", "-").replace("‐", "-")
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not text:
        return ""
    if not text.isascii():
        return None  # "١٣٨..." (Arabic-Indic digits) is not how a number is written here
    digits = text.replace("-", "")
    if MOBILE_RE.match(digits) and text.count("-") in (0, 2):
        return digits
    if landline and LANDLINE_RE.match(text):
        return text
    return None
