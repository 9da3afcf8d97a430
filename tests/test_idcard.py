"""GB 11643 ID numbers: check digits, birth dates, masking."""

from datetime import date

import pytest

from server.core import idcard

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize("number", [
    "11010519491231002X",   # the standard's own example, X as check digit
    "440524188001010014",   # the standard's second example
    "430626198503151234",
    "430626200002290025",   # 29 February of a leap year
])
def test_valid_numbers(number):
    assert idcard.problem(number, TODAY) is None


@pytest.mark.parametrize("number,why", [
    ("110105194912310021", "check"),      # X expected
    ("430626198503151235", "check"),      # last digit off by one
    ("430626198305151234", "check"),      # two digits swapped
    ("430626190002290021", "date"),       # 1900 was not a leap year
    ("430626198513011234", "date"),       # month 13
    ("430626198504311234", "date"),       # 31 April
    ("430626203001011234", "date"),       # born in the future
    ("43062619850315123", "shape"),       # 17 characters
    ("43062619850315123Y", "shape"),
    ("", "shape"),
])
def test_invalid_numbers(number, why):
    zh, en = idcard.problem(number, TODAY)
    assert {"check": "check digit", "date": "birth date", "shape": "18 characters"}[why] in en
    assert zh


def test_normalise_and_parts():
    n = idcard.normalise(" 11010519491231002x ")
    assert n == "11010519491231002X" and idcard.is_valid(n, TODAY)
    assert idcard.birth_date(n) == "1949-12-31"
    assert idcard.sex_of("430626198503151234") == "male"
    assert idcard.sex_of("430626200002290025") == "female"
    computed = "43062619850315123" + idcard.check_digit("43062619850315123")
    assert computed == "430626198503151234"


def test_mask():
    assert idcard.mask("430626198503151234") == "4306**********1234"
    assert idcard.is_masked("4306**********1234")
    assert idcard.mask("11010519491231002X") == "1101**********002X"
    assert idcard.mask("") == ""
    assert not idcard.is_masked("430626198503151234")
