"""A submission's answers as people read them, in the page's language and by the submission's own
form version: labels for questions and choices, sections, repeats, numbers. The review page and the
exports both read answers through here, so they never disagree about what an answer says."""

from server.forms import formdefs
from server.core.i18n import label, tr
from server.core.numbers import parse_index
from server.core import words

NOT_ANSWERS = ("note", "group")
FILE_TYPES = ("photo", "signature", "audio", "video", "file")


def questions(definition):
    """The questions answers are keyed by (sections opened), notes left out."""
    return [f for f in formdefs.answer_fields(definition) if f.get("type") not in NOT_ANSWERS]


def sections(definition):
    """[(section title or "", [questions])] in form order; questions outside a section form their
    own untitled runs."""
    out = []
    for f in definition.get("fields") or []:
        if f.get("type") == "group":
            out.append((label(f.get("label")), [c for c in f.get("fields") or []
                                                if c.get("type") not in NOT_ANSWERS]))
        elif f.get("type") not in NOT_ANSWERS:
            if out and out[-1][0] == "":
                out[-1][1].append(f)
            else:
                out.append(("", [f]))
    return [(title, fields) for title, fields in out if fields]


def choice_label(field, value):
    for choice in field.get("choices") or []:
        if choice.get("name") == value:
            return label(choice.get("label")) or str(value)
    return "" if value is None else str(value)


def number(value):
    """12.0 -> 12, 3.5 -> 3.5: as a ledger writes them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def text(field, value, sep="、"):
    """One answer (not a repeat) as text: choices by label, a point with its accuracy."""
    if value is None or value == "" or value == []:
        return ""
    kind = field.get("type")
    if kind == "select_one":
        return choice_label(field, value)
    if kind == "select_multiple" and isinstance(value, list):
        return sep.join(choice_label(field, v) for v in value)
    if kind == "geopoint" and isinstance(value, dict):
        return geopoint_text(value)
    if isinstance(value, bool):
        return tr(*words.yes_no(value))
    if isinstance(value, (int, float)):
        return str(number(value))
    return str(value)


def geopoint_text(value):
    lat, lon, acc = value.get("lat"), value.get("lon"), value.get("accuracy")
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return ""
    out = f"{lat:.6f}, {lon:.6f}"
    if isinstance(acc, (int, float)):
        out += tr(f"（精度 ±{number(acc)} 米）", f" (±{number(acc)} m)")
    return out


def form_title(definition, fallback=""):
    return label((definition or {}).get("title")) or fallback


def applicable(definition, answers):
    """Names of the questions that apply to these answers (a section's condition folded in): the
    rest, unanswered, need not be shown."""
    from server.core.clock import today
    from server.forms.conditions import ConditionError, evaluate
    out = set()
    for f in formdefs.answer_fields(definition):
        try:
            holds = evaluate(f.get("relevant"), answers or {}, today=today())
        except ConditionError:
            holds = True
        if holds:
            out.add(f["name"])
    return out


def target_label(definition, name):
    """What a review comment is about, in words: a question, or one answer of a repeat entry
    (`repeat.INDEX.child`)."""
    fields = {f["name"]: f for f in questions(definition)}
    if name in fields:
        return label(fields[name].get("label")) or name
    parts = str(name).split(".")
    position = parse_index(parts[1]) if len(parts) == 3 else None
    if position is not None and parts[0] in fields:
        repeat = fields[parts[0]]
        child = next((c for c in repeat.get("fields") or [] if c.get("name") == parts[2]), {})
        n = position + 1
        return tr(f"{label(repeat.get('label'))} 第 {n} 条 · {label(child.get('label')) or parts[2]}",
                  f"{label(repeat.get('label'))} #{n} · {label(child.get('label')) or parts[2]}")
    return str(name)


def _repeat_rows(field, value):
    children = [c for c in field.get("fields") or [] if c.get("type") not in NOT_ANSWERS]
    return ["；".join(f"{label(c.get('label')) or c['name']}：{text(c, entry.get(c['name']))}"
                     for c in children if entry.get(c["name"]) not in (None, "", []))
            for entry in (value or []) if isinstance(entry, dict)]


def diff(old_definition, old_answers, new_definition, new_answers):
    """What a correction changed, question by question, in form order (the correction's form,
    then questions only the original had): [{"name", "label", "before", "after"}], each side as
    people read it (a repeat as one line per entry). Unchanged answers are left out."""
    old_fields = {f["name"]: f for f in questions(old_definition)}
    new_fields = {f["name"]: f for f in questions(new_definition)}
    names = list(new_fields) + [n for n in old_fields if n not in new_fields]
    out = []
    for name in names:
        before, after = (old_answers or {}).get(name), (new_answers or {}).get(name)
        if before == after:
            continue
        field = new_fields.get(name) or old_fields[name]
        show = (lambda f, v: _repeat_rows(f, v)) if field.get("type") == "repeat" else \
            (lambda f, v: [text(f, v)] if v not in (None, "", []) else [])
        out.append({"name": name, "label": label(field.get("label")) or name,
                    "before": show(old_fields.get(name, field), before),
                    "after": show(field, after)})
    return out
