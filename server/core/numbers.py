"""Numbers written by people and clients: integers, decimals and list positions in ASCII digits only
("²".isdigit() is True and int("²") raises), bounded, or None. The request readers (web/parse.py)
and the record owners share these."""

import re

DIGITS_RE = re.compile(r"^[+-]?[0-9]{1,18}\Z")  # ASCII digits only: "²".isdigit() is True


def parse_int(raw, lo=None, hi=None):
    """An int from text (ASCII digits, optional sign) or an int; None when it is not one or is out
    of [lo, hi]."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and DIGITS_RE.match(raw.strip()):
        value = int(raw.strip())
    else:
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return None
    return value


INDEX_RE = re.compile(r"^(0|[1-9][0-9]{0,8})\Z")


def parse_index(text):
    """A list position written in a path ("members.2.name"): plain ASCII digits, no sign, no
    leading zero; None otherwise ("²".isdigit() is True, and int("²") raises)."""
    return int(text) if isinstance(text, str) and INDEX_RE.match(text) else None


DECIMAL_RE = re.compile(r"^[+-]?[0-9]{1,15}(\.[0-9]{1,6})?\Z")  # ASCII only, no "nan", no "1e999"


def parse_decimal(raw, lo=None, hi=None):
    """A finite float from text like "1.5" (ASCII digits, optional sign and fraction), or None when
    it is not one or is out of [lo, hi]."""
    if not isinstance(raw, str) or not DECIMAL_RE.match(raw.strip()):
        return None
    value = float(raw.strip())
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return None
    return value
