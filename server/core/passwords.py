"""Passwords people are given and passwords people choose: a one-time password readable off a slip
of paper, and why a chosen one is refused. Nothing here stores or hashes (records/users.py does)."""

import secrets

MIN_LENGTH, MAX_LENGTH = 8, 200
# Letters and digits that can't be misread on paper: no 0/O/o, 1/l/I.
READABLE = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ONE_TIME_LENGTH = 10

# The passwords tried first by anyone guessing (leaked-password lists' heads, and their Chinese
# favourites: pinyin, keyboard rows, lucky numbers). A small list on purpose: it refuses the
# obvious, the length rule does the rest.
COMMON = frozenset("""
12345678 123456789 1234567890 0123456789 11111111 00000000 88888888 66666666 12341234 87654321
11223344 12121212 123123123 1q2w3e4r 1qaz2wsx qwertyui qwertyuiop asdfghjk asdfghjkl zxcvbnm1
password password1 password123 passw0rd p@ssw0rd p@ssword iloveyou admin123 admin1234 administrator
abc12345 abcd1234 a1234567 a12345678 aa123456 qq123456 woaini1314 5201314520 woaini520 1314520520
wang1234 zhang123 li123456 asd12345 qwe12345 qwer1234 welcome1 letmein1 sunshine football
baseball superman 12345678a 123456aa 123456abc jiedui123 jiedui2026 changeme changeme1
""".split())


def one_time(rng=None):
    """A random password for a slip: ONE_TIME_LENGTH readable characters, at least one digit."""
    pick = (rng or secrets.SystemRandom()).choice
    while True:
        text = "".join(pick(READABLE) for _ in range(ONE_TIME_LENGTH))
        if any(c.isdigit() for c in text) and any(c.isalpha() for c in text):
            return text


def length_problems(password):
    """[(zh, en)] when the password is too short or too long (or not text)."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return [(f"密码至少 {MIN_LENGTH} 位", f"Password must have at least {MIN_LENGTH} characters")]
    if len(password) > MAX_LENGTH:
        return [(f"密码最多 {MAX_LENGTH} 位", f"Password must have at most {MAX_LENGTH} characters")]
    return []


def choice_problems(password, username):
    """[(zh, en)] why a password someone chose for themselves is refused (length, the username,
    a common password); [] when it will do. Whether it repeats the old one is the caller's check."""
    found = length_problems(password)
    if found:
        return found
    lowered = password.lower()
    if username and (lowered == username.lower() or username.lower() in lowered and
                     len(lowered) - len(username) < 4):
        found.append(("密码不能是用户名（或只比用户名多几个字符）",
                      "The password must not be the username (or the username and a few characters)"))
    if lowered in COMMON or len(set(lowered)) <= 2:
        found.append(("这个密码太常见，很容易被猜到，请换一个",
                      "This password is too common and easy to guess; choose another"))
    return found
