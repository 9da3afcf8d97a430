"""Reviews (owner): a supervisor's decision on a submission and the review queue.

The decision lives on the submission (`review` = {"state", "comment", "fields", "by", "at",
"history"}, made by submissions.build_record): `received` -> `approved`, or `has_issues` (returned
with a comment and comments on single answers) -> the cadre sends a correction that names it
(`supersedes`, decided in submissions.store_prepared) -> the new one is `received`, the old one
leaves the queue. Every decision is appended to `history` and to the audit log in the same write,
so two supervisors deciding at once both stay on record and the later one is current. Writing the
submission moves its `seq`, which is how a cadre's phone (GET /api/v1/submissions?since=) learns it.
"""

from dataclasses import dataclass

from server.core.clock import now_iso
from server.core.numbers import parse_index
from server.core.problems import Problem, field_error, invalid
from server.store import get_store
from server.records import audit, submissions, villages
from server.core.text import NOT_TEXT_RE

DECISIONS = ("approved", "has_issues")
STATES = submissions.REVIEW_STATES
MAX_COMMENT = 2000
MAX_FIELD_COMMENTS = 100
BODY_KEYS = ("state", "comment", "fields")


# ---- what may be said ---------------------------------------------------------------------------


def commentable(definition, answers, name):
    """Whether `name` names an answer of this form version: a question (not a note or a section),
    or one answer inside a repeat entry the submission has, as `repeat.INDEX.child`."""
    from server.forms.formdefs import answer_fields
    fields = {f["name"]: f for f in answer_fields(definition) if f.get("type") not in ("note", "group")}
    if name in fields:
        return True
    parts = name.split(".")
    if len(parts) != 3 or parts[0] not in fields or fields[parts[0]].get("type") != "repeat":
        return False
    repeat, index, child = fields[parts[0]], parts[1], parts[2]
    entries = (answers or {}).get(repeat["name"])
    position = parse_index(index)
    if position is None or not isinstance(entries, list) or position >= len(entries):
        return False
    return any(c.get("name") == child and c.get("type") != "note" for c in repeat.get("fields") or [])


def _comment(value, field, errors):
    if value is None:
        return ""
    if not isinstance(value, str) or NOT_TEXT_RE.search(value):
        errors.append(field_error(field, "意见须为文字。", "A comment must be text."))
        return ""
    value = value.strip()
    if len(value) > MAX_COMMENT:
        errors.append(field_error(field, f"意见最多 {MAX_COMMENT} 字（现有 {len(value)} 字）。",
                                  f"A comment may have at most {MAX_COMMENT} characters "
                                  f"(this one has {len(value)})."))
    return value


def check_decision(definition, answers, body, *, require_reason=False):
    """A decision as sent ({"state", "comment", "fields"}) checked against the submission's own form
    version: (clean, errors), each error naming its field. `require_reason`: a return must say why
    (the review page asks it; the API leaves it to the caller)."""
    errors = []
    if not isinstance(body, dict):
        return None, [field_error(None, "须为 JSON 对象。", "Must be a JSON object.")]
    for key in sorted(str(k)[:40] for k in body if k not in BODY_KEYS)[:10]:
        errors.append(field_error(key, "未知的属性。", "Unknown property."))
    state = body.get("state")
    if state not in DECISIONS:
        errors.append(field_error("state", "审核结果须为 approved（通过）或 has_issues（退回修改）。",
                                  "state must be approved or has_issues."))
    comment = _comment(body.get("comment"), "comment", errors)
    raw_fields = body.get("fields")
    fields = {}
    if raw_fields is not None and not isinstance(raw_fields, dict):
        errors.append(field_error("fields", "fields 须为对象：{题目名: 意见}。",
                                  'fields must be an object {"NAME": "comment"}.'))
    elif raw_fields:
        if len(raw_fields) > MAX_FIELD_COMMENTS:
            errors.append(field_error("fields", f"最多对 {MAX_FIELD_COMMENTS} 个答案写意见。",
                                      f"At most {MAX_FIELD_COMMENTS} comments on answers."))
        for name, text in list(raw_fields.items())[:MAX_FIELD_COMMENTS]:
            shown = str(name)[:64]
            if not commentable(definition, answers, name):
                errors.append(field_error(shown, f"表单（第 {definition.get('version')} 版）没有这道题：{shown}",
                                          f"The form (version {definition.get('version')}) has no "
                                          f"question {shown}."))
                continue
            text = _comment(text, shown, errors)
            if text:
                fields[name] = text
    if require_reason and state == "has_issues" and not comment and not fields:
        errors.append(field_error("comment", "退回修改时请写明原因（总体意见或对某道题的意见）。",
                                  "Say why it is returned: a general comment or one on an answer."))
    if errors:
        return None, errors
    return {"state": state, "comment": comment, "fields": fields}, []


# ---- deciding -------------------------------------------------------------------------------------


def record(tx, actor, village_id, sub_uuid, decision, *, at=None, write_audit=True):
    """Append a checked decision to a submission inside the write `tx` and make it current.
    Returns the new review, or None when the submission is gone; raises Problem when it was
    corrected meanwhile (a superseded visit is no longer reviewed)."""
    doc = tx.get(village_id, submissions.TABLE, sub_uuid)
    if doc is None:
        return None
    if doc.get("superseded_by"):
        raise Problem("review_superseded", by=doc["superseded_by"])
    entry = {"state": decision["state"], "comment": decision.get("comment") or "",
             "fields": dict(decision.get("fields") or {}), "by": actor, "at": at or now_iso()}
    old = doc.get("review") or {}
    review = dict(entry, history=list(old.get("history") or []) + [dict(entry)])
    doc["review"] = review
    tx.put(village_id, submissions.TABLE, doc)
    if write_audit:
        audit.record(tx, actor, "review", sub_uuid,
                     {"state": entry["state"], "household_id": doc.get("household_id"),
                      "form": doc.get("form"), "from_state": old.get("state"),
                      "fields": sorted(entry["fields"]), "comment": entry["comment"][:200]})
    return review


def decide(user, doc, body, registry, *, require_reason=False, store=None):
    """A supervisor's decision on `doc` (already checked to be in their scope): checked against the
    submission's form version, then recorded in one write. Returns the submission's review."""
    definition = registry.get(doc["form"], doc["form_version"]) or {"version": doc["form_version"],
                                                                    "fields": []}
    decision, errors = check_decision(definition, doc.get("answers"), body,
                                      require_reason=require_reason)
    if errors:
        raise invalid(errors)
    actor = user.id  # read here: the write runs on the store's thread
    review = (store or get_store()).write(
        lambda tx: record(tx, actor, doc["village_id"], doc["uuid"], decision))
    if review is None:
        raise Problem("submission_not_found")
    return review


def approve_many(user, keys, *, store=None):
    """Approve every submission of `keys` ([(village_id, uuid)], already checked to be in the
    user's scope and waiting) in one write, each decision on record and audited as one would be;
    a submission corrected or decided meanwhile is skipped. Returns how many were approved."""
    actor, at = user.id, now_iso()
    decision = {"state": "approved", "comment": "", "fields": {}}

    def write(tx):
        done = 0
        for village_id, sub_uuid in keys:
            doc = tx.peek(village_id, submissions.TABLE, sub_uuid)
            if doc is None or not submissions.is_current(doc) \
                    or (doc.get("review") or {}).get("state", "received") != "received":
                continue
            if record(tx, actor, village_id, sub_uuid, decision, at=at) is not None:
                done += 1
        return done
    return (store or get_store()).write(write)


# ---- the queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What a queue, a list page or an export narrows to (None: anything)."""
    village: str = None
    state: str = None
    form: str = None
    cadre: str = None
    date_from: str = None   # the submission's day (visit date, else the day filled in), inclusive
    date_to: str = None
    household: str = None

    def keep(self, doc):
        """Reads the stored document only (it may be the store's own: see submissions.scan)."""
        if not submissions.is_current(doc):
            return False
        if self.state and (doc.get("review") or {}).get("state", "received") != self.state:
            return False
        if self.form and doc.get("form") != self.form:
            return False
        if self.cadre and doc.get("cadre_id") != self.cadre:
            return False
        if self.household and doc.get("household_id") != self.household:
            return False
        if self.date_from or self.date_to:
            day = submissions.day_of(doc)
            if (self.date_from and day < self.date_from) or (self.date_to and day > self.date_to):
                return False
        return True


def _row(doc):
    """The light key of a queued submission: plain values only."""
    return (submissions.day_of(doc), doc.get("received_at") or "", doc["uuid"], doc["village_id"],
            doc.get("seq", 0))


def rows(user, filters, db=None):
    """Keys of every submission in scope the filters keep, newest day first:
    [(day, received_at, uuid, village_id, seq)]. Open them with `open_rows`."""
    db = db or get_store()
    out = []
    for vid in villages.ids_in_scope(user, db, filters.village):
        out.extend(submissions.scan(vid, _row, filters.keep, db))
    out.sort(reverse=True)
    return out


def open_rows(rows_, db=None):
    db = db or get_store()
    out = []
    for row in rows_:
        out.extend(submissions.each(row[3], [row[2]], db))
    return out


def changed_since(user, filters, since, limit, db=None):
    """A page of the queue changed after `since` (the seq cursor), oldest change first, and the
    cursor to ask from next: how a supervisor's tool keeps up."""
    db = db or get_store()
    keys = []
    for vid in villages.ids_in_scope(user, db, filters.village):
        keys.extend(submissions.scan(vid, lambda d: (d.get("seq", 0), d["uuid"], d["village_id"]),
                                     lambda d: d.get("seq", 0) > since and filters.keep(d), db))
    keys.sort()
    page = keys[:limit]
    docs = [doc for _seq, sub_uuid, vid in page for doc in submissions.each(vid, [sub_uuid], db)]
    return [submissions.public(d) for d in docs], (page[-1][0] if page else since)


def counts(user, filters, db=None):
    """How many submissions in scope are in each review state (the filters' state aside)."""
    db = db or get_store()
    out = dict.fromkeys(STATES, 0)
    loose = Filters(**{**filters.__dict__, "state": None})
    for vid in villages.ids_in_scope(user, db, filters.village):
        for state in submissions.scan(vid, lambda d: (d.get("review") or {}).get("state", "received"),
                                      loose.keep, db):
            out[state] = out.get(state, 0) + 1
    return out
