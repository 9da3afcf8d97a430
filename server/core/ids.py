"""The shape of the ids people and phones send: one rule for a village id and a household id.

A village id names the village's partition and its file (villages/<id>.json), so it stays plain
ASCII letters and digits; a household id is its village's id and a four-digit number."""

import re

VILLAGE_ID = r"[A-Za-z0-9]{1,32}"
VILLAGE_ID_RE = re.compile(rf"^{VILLAGE_ID}\Z")
HOUSEHOLD_ID_RE = re.compile(rf"^({VILLAGE_ID})-([0-9]{{4}})\Z")


def is_village_id(value):
    return isinstance(value, str) and bool(VILLAGE_ID_RE.match(value))
