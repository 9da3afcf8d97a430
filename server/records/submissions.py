"""Submissions (owner): the one pipeline from what a phone sent to a stored record, each step in
one place — `parse_item` (the item's shape, scope, the form version), `formdefs.validate_answers`
(the answers against that version), `build_record` (the stored shape), `ingest` (one store write
that decides duplicates, applies the form's declared effects to the household and audits) — and
every query about submissions.
"""

import hashlib
import json
import uuid as uuidlib

from server.forms import effects as form_effects
from server.forms import formdefs
from server.core.clock import local_date, now, now_iso, sane_phone_time, today
from server.core.numbers import parse_index
from server.core.problems import field_error
from server.store import UnstorableValue, encode, get_store
from server.records import attachments as attachment_records
from server.records import audit, households, scan_partition, villages

TABLE = "submissions"
KEY = "uuid"  # a submission's key: unique server-wide, so the store finds its village (layout.py)
ITEM_KEYS = {"uuid", "form", "form_version", "household_id", "created_at", "answers", "attachments",
             "base_version", "supersedes"}
REVIEW_STATES = ("received", "has_issues", "approved")


def _err(field, zh, en):
    return field_error(field, zh, en)


def canonical_uuid(value):
    """The lower-case canonical form of a UUID text, or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = str(uuidlib.UUID(value))
    except ValueError:
        return None
    return parsed if parsed == value.lower() else None


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(item):
    """What the phone sent, canonically: a repeated uuid is a duplicate only if this matches."""
    content = {k: item.get(k) for k in ("form", "form_version", "household_id", "created_at",
                                         "answers", "attachments", "base_version")}
    if item.get("supersedes") is not None:
        content["supersedes"] = item["supersedes"]
    return hashlib.sha256(_CANONICAL.encode(content).encode()).hexdigest()


# ---- 1. the item ----------------------------------------------------------------------------


def push_clock():
    """(now, today) read once for a whole push: "not in the future" and "not later than today"
    are the same for its 20 items, and reading the clock (settings, zone) was a twentieth of it."""
    at = now()
    return at, today(at)


def parse_item(user, item, registry, settings, *, max_attachment_bytes, db=None, clock=None):
    """Everything about one pushed item that needs no store write: (prepared, errors).
    `prepared` holds the record-to-be and the effects its answers declare. `clock` is
    push_clock()'s (now, today), read once by a caller parsing many items."""
    at, day = clock or push_clock()
    if not isinstance(item, dict):
        return None, [_err(None, "条目须为 JSON 对象。", "Each item must be a JSON object.")]
    errors = []
    unknown = sorted(str(k)[:40] for k in set(item) - ITEM_KEYS)
    if unknown:
        shown = ", ".join(unknown[:10])
        errors.append(_err(unknown[0], f"未知的属性：{shown}", f"Unknown properties: {shown}"))
    sub_uuid = canonical_uuid(item.get("uuid"))
    if sub_uuid is None:
        return None, [_err("uuid", "uuid 格式不正确。", "uuid is not a UUID.")]
    definition = None
    form_id, version = item.get("form"), item.get("form_version")
    if not isinstance(form_id, str) or registry.get(form_id) is None:
        errors.append(_err("form", "未知的表单。", "Unknown form."))
    elif isinstance(version, bool) or not isinstance(version, int) or registry.get(form_id, version) is None:
        errors.append(_err("form_version", "未知的表单版本。", "Unknown form version."))
    else:
        definition = registry.get(form_id, version)
    household = households.stub_for(user, item.get("household_id"), db)
    if household is None:
        errors.append(_err("household_id", "找不到该农户，或不在你的范围内。",
                           "No such household in your scope."))
    created_at = item.get("created_at")
    if sane_phone_time(created_at, at=at) is None:
        errors.append(_err("created_at", "created_at 须为 2000 年以后、不晚于现在的 ISO 8601 时间。",
                           "created_at must be an ISO 8601 date-time after 2000 and not in the future."))
    base = item.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or not 0 <= base < 2**53):
        errors.append(_err("base_version", "base_version 须为非负整数。", "base_version must be a whole number >= 0."))
    supersedes = item.get("supersedes")
    if supersedes is not None and canonical_uuid(supersedes) is None:
        errors.append(_err("supersedes", "supersedes 须为被更正记录的 uuid。",
                           "supersedes must be the uuid of the submission it corrects."))
    attachments, att_errors = attachment_records.check_declared(item.get("attachments", []),
                                                                max_attachment_bytes)
    errors.extend(att_errors)
    if not isinstance(item.get("answers"), dict):
        errors.append(_err("answers", "answers 须为对象。", "answers must be an object."))
    if errors or definition is None:
        return None, errors
    answers, answer_errors = formdefs.validate_answers(definition, item["answers"], today=day,
                                                       settings=settings)
    errors.extend(_err(e.get("field"), e.get("zh", ""), e.get("en", "")) for e in answer_errors)
    declared = {a["name"] for a in attachments}
    for name in formdefs.attachment_names(definition, answers):
        if name not in declared:
            errors.append(_err(name, "答案引用的附件未声明。", "An answer names an attachment that is not declared."))
    if errors:
        return None, errors
    effects = form_effects.of(definition, answers, at=created_at)
    supersedes = canonical_uuid(supersedes) if supersedes else None
    record = build_record(sub_uuid, user, household, definition, answers, attachments, created_at,
                          base, supersedes, effects)
    prepared = {"record": record, "fingerprint": fingerprint(item), "effects": effects}
    if supersedes:
        prepared["correction"] = _correction_context(supersedes, household, effects, registry,
                                                     db or get_store())
    if effects["followup_answers"]:
        prepared["promises"] = _promise_context(household, effects, registry, db or get_store())
    return prepared, []


# ---- 2. the record ------------------------------------------------------------------------------


def build_record(sub_uuid, user, household, definition, answers, attachments, created_at, base,
                 supersedes, effects):
    """The one shape of a stored submission (received_at and seq are stamped when it is stored)."""
    return {"uuid": sub_uuid, "form": definition["id"], "form_version": definition["version"],
            "household_id": household["id"], "village_id": household["village_id"],
            "cadre_id": user.id, "answers": answers, "attachments": attachments,
            "created_at": created_at, "base_version": base, "supersedes": supersedes,
            "superseded_by": None, "visit_date": effects["visit_date"],
            "help_value": effects["help_value"],
            "review": {"state": "received", "comment": "", "fields": {}, "by": None, "at": None,
                       "history": []}}


# ---- 3. storing ---------------------------------------------------------------------------------


def find(db, sub_uuid):
    """uuids are unique server-wide; the store knows which village holds one (TinyDB: its key
    index; PostgreSQL: inside a write the lookup holds the uuid, so two servers storing one uuid
    take turns)."""
    vid = db.partition_of(TABLE, sub_uuid)
    return db.get(vid, TABLE, sub_uuid) if vid else None


def _stored_form(p, record):
    """What to put for `record`: the copy `ingest` encoded before the write when it is this very
    record (so the writer thread only stamps its seq), else the record itself."""
    encoded = p.get("encoded")
    if encoded is not None and encoded.doc.get("received_at") == record["received_at"]:
        return encoded
    return record


def _followup_errors(effects, household, also=frozenset(), made=()):
    """Answers about earlier promises must name a follow-up this household still has open (or, in
    a correction, one the corrected visit answered: `also`), or one it was promised and has closed
    since (`made`: kept, and returned as late answers to record as a clash). (errors, late)."""
    if not effects["followup_answers"]:
        return [], []  # most visits answer none: the household's promises are not read
    open_ids = {f["id"] for f in household.get("open_followups") or []} | set(also)
    errors, late = [], []
    for a in effects["followup_answers"]:
        if a["id"] in open_ids:
            continue
        if a["id"] in made:
            late.append(a)
            continue
        errors.append(_err(a["field"], "该户没有这项跟进事项。", "This household has no such follow-up."))
    return errors, late


def _promise_context(household, effects, registry, db):
    """For each promise the visit answers: the promise as made (its visit declares it), so an answer
    to one closed meanwhile elsewhere (another device of the cadre, offline) is kept as a clash
    rather than refused; and, for those not open now, the answer that closed it. Read before the
    write (answers never change once stored); whether it is still open is decided in the write."""
    vid = household["village_id"]
    made = {}
    for a in effects["followup_answers"]:
        origin_uuid, _, index = str(a["id"]).rpartition(":")
        position = parse_index(index)
        origin = db.get(vid, TABLE, origin_uuid) if canonical_uuid(origin_uuid) and position is not None \
            else None
        if origin is None or origin.get("household_id") != household["id"]:
            continue
        for f in _effects_of(origin, registry)["followups"]:
            if f["index"] == position:
                made[a["id"]] = {"action": f["action"], "due_date": f["due_date"], "submission": origin_uuid}
    still_open = households.open_followup_ids(household["id"], db)
    closed = {fid for fid in made if fid not in still_open}
    closing = {}
    if closed:
        for doc in db.search(vid, TABLE, lambda d: d.get("household_id") == household["id"]
                             and not d.get("superseded_by")):
            for a in _effects_of(doc, registry)["followup_answers"]:
                if a["id"] in closed and a["status"] in households.FOLLOWUP_CLOSED:
                    closing[a["id"]] = {"submission": doc["uuid"], "status": a["status"],
                                        "note": a["note"], "cadre_id": doc.get("cadre_id"),
                                        "visit_date": doc.get("visit_date")}
    return {"made": made, "closing": closing}


def _correction_context(old_uuid, household, effects, registry, db):
    """What a correction needs from the stored visits it builds on, read before the write (answers
    never change once stored): the follow-ups the corrected visit answered (the correction may answer
    them again), and, for those it now says are still open, the follow-up as first promised, so it
    can be reopened. Whether the correction is allowed at all is decided in the write."""
    old = db.get(household["village_id"], TABLE, old_uuid)
    if old is None or old.get("household_id") != household["id"]:
        return {"answered": [], "reopen": {}}
    answered = [a["id"] for a in _effects_of(old, registry)["followup_answers"]]
    reopen = {}
    for a in effects["followup_answers"]:
        if a["id"] not in answered or a["status"] in households.FOLLOWUP_CLOSED:
            continue
        origin_uuid, _, index = str(a["id"]).rpartition(":")
        origin = db.get(household["village_id"], TABLE, origin_uuid)
        position = parse_index(index)
        if origin is None or position is None:
            continue
        for f in _effects_of(origin, registry)["followups"]:
            if f["index"] == position:
                reopen[a["id"]] = {"id": a["id"], "action": f["action"], "due_date": f["due_date"],
                                   "submission": origin_uuid, "visit_date": origin.get("visit_date"),
                                   "cadre_id": origin.get("cadre_id"), "status": "open", "note": ""}
    return {"answered": answered, "reopen": reopen}


def _effects_of(doc, registry):
    definition = registry.get(doc.get("form"), doc.get("form_version"))
    if definition is None:
        return {"followups": [], "followup_answers": []}
    return form_effects.of(definition, doc.get("answers"))


def _correction_error(old, record):
    """Why `record` may not replace `old` (None when it may): the same household, form and cadre,
    not approved, not corrected already. Decided inside the write, so two corrections of one visit
    can never both succeed."""
    def no(zh, en):
        return _err("supersedes", zh, en)
    if old is None or old.get("household_id") != record["household_id"]:
        return no("supersedes 所指的记录不存在，或不属于该农户。",
                  "supersedes names no submission of this household.")
    if old.get("form") != record["form"]:
        return no("supersedes 所指的记录是另一张表单。", "supersedes names a submission of another form.")
    if old.get("cadre_id") != record["cadre_id"]:
        return no("只能更正自己提交的记录（supersedes）。",
                  "supersedes names someone else's submission; only your own can be corrected.")
    if (old.get("review") or {}).get("state") == "approved":
        return no("supersedes 所指的记录已审核通过，不能更正。",
                  "supersedes names an approved submission, which cannot be corrected.")
    if old.get("superseded_by"):
        return no(f"supersedes 所指的记录已被更正（{old['superseded_by']}），请更正最新的一条。",
                  f"supersedes names a submission already corrected by {old['superseded_by']}; "
                  f"correct the latest one.")
    return None


def is_current(sub):
    """Not replaced by a correction."""
    return not sub.get("superseded_by")


def is_visit(sub):
    """A visit: a current submission whose form dates it (the form declares effects.visit_date)."""
    return is_current(sub) and isinstance(sub.get("visit_date"), str) and bool(sub["visit_date"])


def is_returned(sub):
    """Returned to the cadre (review state has_issues) and not corrected yet."""
    return is_current(sub) and (sub.get("review") or {}).get("state") == "has_issues"


def last_visit_date(db, village_id, household_id):
    """The latest visit date among a household's current (not superseded) submissions."""
    dates = [d["visit_date"] for d in db.search(village_id, TABLE, lambda d: d.get("household_id") == household_id
                                               and is_visit(d))]
    return max(dates) if dates else None


def store_prepared(tx, actor, p, *, received_at=None, write_audit=True):
    """Store one prepared item and apply its declared effects to the household, inside `tx`.
    Returns (result, household clash or None)."""
    record = dict(p["record"], fingerprint=p["fingerprint"], received_at=received_at or now_iso())
    effects = p["effects"]
    hid = record["household_id"]
    replaced = None
    if record.get("supersedes"):
        replaced = tx.get(record["village_id"], TABLE, record["supersedes"])
        error = _correction_error(replaced, record)
        if error:
            return {"uuid": record["uuid"], "status": "rejected", "errors": [error]}, None
    household = tx.peek(record["village_id"], households.TABLE, hid)  # read only: no copy
    correction = p.get("correction") or {}
    promises = p.get("promises") or {}
    errors, late = _followup_errors(effects, household, set(correction.get("answered") or ()),
                                    promises.get("made") or {}) if household else ([], [])
    if errors:
        return {"uuid": record["uuid"], "status": "rejected", "errors": errors}, None
    tx.put(record["village_id"], TABLE, _stored_form(p, record))
    if replaced is not None:
        # The correction replaces the original: it leaves the review queue, and its promises give
        # way to the correction's (closed ones the correction says are still open come back).
        tx.put(record["village_id"], TABLE, dict(replaced, superseded_by=record["uuid"]))
        households.forget_followups_of(tx, hid, replaced["uuid"])
    changes = households.keep_member_extras(dict(effects["changes"]), household)
    for attribute in form_effects.MERGED:
        if attribute in changes and isinstance((household or {}).get(attribute), dict):
            changes[attribute] = {**household[attribute], **changes[attribute]}
    clash = None
    if changes:
        clean, problems = households.clean_changes(changes)
        if problems:  # a form's effect the household schema refuses: keep the visit, skip the change
            record["effect_errors"] = problems[:10]
            tx.put(record["village_id"], TABLE, record)
        elif clean:
            _doc, clash = households.apply_changes(
                tx, actor, hid, clean, base_version=record["base_version"],
                source=f"submission:{record['uuid']}", submission=record["uuid"], write_audit=False)
    opened = [{"id": f"{record['uuid']}:{f['index']}", "action": f["action"], "due_date": f["due_date"],
               "submission": record["uuid"], "visit_date": record["visit_date"],
               "cadre_id": record["cadre_id"], "status": "open", "note": ""}
              for f in effects["followups"]]
    opened.extend(item for fid, item in (correction.get("reopen") or {}).items())
    closed = [{"id": a["id"], "status": a["status"], "note": a["note"]}
              for a in effects["followup_answers"]]
    if record["visit_date"] or opened or closed:
        households.note_visit(tx, hid, visit_date=record["visit_date"], opened=opened, closed=closed,
                              submission=record["uuid"])
    if late:  # promises closed elsewhere meanwhile: the answer is kept, the difference reviewed
        late_clash = households.record_followup_clash(
            tx, actor, hid, [dict(a, **promises["made"][a["id"]]) for a in late],
            promises.get("closing") or {}, submission=record["uuid"])
        clash = clash or late_clash
    if replaced is not None and replaced.get("visit_date") \
            and replaced["visit_date"] != record["visit_date"] \
            and replaced["visit_date"] >= ((household or {}).get("last_visit_date") or ""):
        # The corrected visit was the household's latest: the latest is looked for again among its
        # visits. An earlier one moving leaves the latest where it is (a later date moved it
        # forward in note_visit), so no correction but this one reads the village's visits.
        households.set_last_visit_date(tx, hid, last_visit_date(tx, record["village_id"], hid))
    if write_audit:
        audit.record(tx, actor, "submission", record["uuid"],
                     {"form": record["form"], "household_id": hid,
                      "clash": clash["kind"] if clash else None,
                      "supersedes": record.get("supersedes")}, at=record["received_at"])
    return {"uuid": record["uuid"], "status": "created", "errors": [],
            "incomplete": bool(record["attachments"])}, clash


def uuid_reused():
    """The same uuid with other content: refused, as ODK Central answers 409."""
    return _err("uuid", "该 uuid 已用于其他内容。", "uuid already used with other content")


def receive(user, items, registry, settings, *, max_attachment_bytes, store=None):
    """A push: each item parsed and checked, the good ones stored in one write; one result per
    item, in order ({"uuid", "status": created|duplicate|rejected, "errors"}). One bad item never
    blocks the good ones; the same uuid twice in one push is decided like a repeat."""
    clock = push_clock()
    results = [None] * len(items)
    prepared, slots, seen = [], [], {}
    for i, item in enumerate(items):
        p, errors = parse_item(user, item, registry, settings,
                               max_attachment_bytes=max_attachment_bytes, clock=clock)
        if errors:
            uuid = item.get("uuid") if isinstance(item, dict) else None
            results[i] = {"uuid": uuid if isinstance(uuid, str) and len(uuid) <= 64 else None,
                          "status": "rejected", "errors": errors}
        elif p["record"]["uuid"] in seen:
            same = prepared[seen[p["record"]["uuid"]]]["fingerprint"] == p["fingerprint"]
            results[i] = {"uuid": p["record"]["uuid"], "status": "duplicate" if same else "rejected",
                          "errors": [] if same else [uuid_reused()]}
        else:
            seen[p["record"]["uuid"]] = len(prepared)
            prepared.append(p)
            slots.append(i)
    if prepared:
        for i, r in zip(slots, ingest(user, prepared, store)):
            results[i] = r
    return results


def ingest(user, prepared, store=None):
    """One write for the whole batch: duplicates and uuid clashes decided on the writer thread, so
    concurrent repeats of a batch can never store twice, and every answer is durable when sent."""
    actor = user.id  # read here: the write runs on the store's thread, outside this request
    reused = uuid_reused()
    received_at = now_iso()
    for p in prepared:  # encoded here, so the writer thread only stamps the seq
        try:
            p["encoded"] = encode(dict(p["record"], fingerprint=p["fingerprint"],
                                       received_at=received_at), handed_over=True)
        except UnstorableValue:
            pass  # the write itself refuses it, as for any write

    def write(tx):
        # the batch's uuids looked up (and, on PostgreSQL, held) at once: one round trip, not one
        # each; the view has already folded a uuid repeated within the batch into one item
        where = tx.partitions_of(TABLE, [p["record"]["uuid"] for p in prepared])
        results = []
        for p in prepared:
            vid = where[p["record"]["uuid"]]
            existing = tx.peek(vid, TABLE, p["record"]["uuid"]) if vid else None  # no copy
            if existing is not None:
                same = existing.get("fingerprint") == p["fingerprint"]
                results.append({"uuid": p["record"]["uuid"], "status": "duplicate" if same else "rejected",
                                "errors": [] if same else [reused]})
                continue
            result, _clash = store_prepared(tx, actor, p, received_at=received_at)
            results.append(result)
        return results

    return (store or get_store()).write(write)


# ---- queries -------------------------------------------------------------------------------------


def public(doc):
    return {k: v for k, v in doc.items() if k != "fingerprint"} | {"complete": is_complete(doc)}


def is_complete(doc):
    """Every declared photo and signature has arrived."""
    return all(a.get("received") for a in doc.get("attachments", []))


def get_for(user, sub_uuid, db=None):
    sub_uuid = canonical_uuid(sub_uuid) or (canonical_uuid(sub_uuid.lower())
                                            if isinstance(sub_uuid, str) else None)
    if sub_uuid is None:
        return None
    doc = find(db or get_store(), sub_uuid)
    if doc is None or not user.can_see_village(doc["village_id"]):
        return None
    return doc


def for_household(user, household_id, db=None):
    db = db or get_store()
    household = households.get_for(user, household_id, db)
    if household is None:
        return []
    docs = db.search(household["village_id"], TABLE, lambda d: d.get("household_id") == household_id)
    return sorted((public(d) for d in docs), key=lambda d: d.get("created_at", ""), reverse=True)


def of_household(household_id, db=None):
    """Every submission of a household, as stored (printing; no scope: the caller checked it)."""
    vid = households.village_of(household_id)
    if vid is None:
        return []
    return (db or get_store()).search(vid, TABLE, lambda d: d.get("household_id") == household_id)


def day_of(doc):
    """The day a submission is about: its visit date, else the local day it was filled in."""
    return doc.get("visit_date") or local_date(doc.get("created_at"))


def scan(village_id, project, keep=None, db=None):
    """[project(doc)] for the village's submissions that keep(doc) accepts (see scan_partition)."""
    return scan_partition(db or get_store(), village_id, TABLE, project, keep)


def each(village_id, uuids, db=None):
    """The stored submissions named, one copy at a time (exports stream with flat memory)."""
    db = db or get_store()
    for sub_uuid in uuids:
        doc = db.get(village_id, TABLE, sub_uuid)
        if doc is not None:
            yield doc


PEEK_BATCH = 256  # documents read under one lock: a writer waits for no more than that


def each_stored(village_id, uuids, db=None):
    """The stored submissions named, as stored (the store's own documents, not copies): for
    readers that only read them and keep nothing of them, like an export writing row after row."""
    db = db or get_store()
    for start in range(0, len(uuids), PEEK_BATCH):
        yield from db.peek_many(village_id, TABLE, uuids[start:start + PEEK_BATCH])


def in_village(village_id, db=None, cond=None):
    return (db or get_store()).search(village_id, TABLE, cond)


def count_in_village(village_id, db=None, cond=None):
    return (db or get_store()).count(village_id, TABLE, cond)


def in_scope(user, db=None, village_id=None, cond=None, since=None):
    db = db or get_store()
    out = []
    for vid in villages.ids_in_scope(user, db, village_id):
        out.extend(db.search(vid, TABLE, cond) if since is None else db.search(vid, TABLE, cond, since=since))
    return out


def own_since(user, since, limit, db=None):
    """The caller's own submissions changed after `since`: how a phone learns review outcomes."""
    changed = in_scope(user, db, cond=lambda d: d.get("cadre_id") == user.id, since=since)
    page, nxt = households.page_by_seq(changed, since, limit)
    return [public(d) for d in page], nxt


MAX_KNOWN = 1000


def known(user, uuids, db=None):
    """Which of `uuids` (canonical) the server holds for this user, each with the declared photos it
    has not received: after a restore a phone re-sends the visits missing here and re-uploads the
    photos missing there. A uuid out of the user's scope counts as unknown, as everywhere."""
    db = db or get_store()
    where = db.partitions_of(TABLE, list(uuids))
    out = []
    for sub_uuid in uuids:
        vid = where.get(sub_uuid)
        doc = db.get(vid, TABLE, sub_uuid) if vid else None
        if doc is None or not user.can_see_village(doc["village_id"]):
            continue
        out.append({"uuid": sub_uuid,
                    "missing": [a["name"] for a in doc.get("attachments", []) if not a.get("received")]})
    return out


def incomplete(user, db=None):
    """Submissions still waiting for declared attachments: kept, and listed so nobody forgets them."""
    waiting = in_scope(user, db, cond=lambda d: not is_complete(d))
    return sorted((public(d) for d in waiting), key=lambda d: d.get("received_at", ""), reverse=True)
