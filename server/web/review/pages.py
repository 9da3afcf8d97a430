"""Review pages: the queue with its filters, one submission with every answer, the household as the
visit found it and what the visit changed, and the decision form. Keyboard: j/k (or the accesskeys)
move through the queue as filtered."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.forms import formdefs
from server.web.auth import role_required
from server.core.i18n import tr
from server.web.parse import int_arg
from server.core.problems import Problem
from server.records import households, reviews, submissions, users, villages
from server.web.review import bp, filters
from server.services import present
from server.forms.labels import state_label

PER_PAGE = 50
REVIEWERS = users.REVIEWERS


def _choices():
    """Options of the filters: villages, forms and cadres in the caller's scope."""
    scope = villages.in_scope(current_user)
    ids = {v["id"] for v in scope}
    registry = formdefs.registry()
    forms = [{"id": f["id"], "title": present.form_title(registry.get(f["id"]), f["id"])}
             for f in registry.current()]
    cadres = users.cadres_in(ids)
    return {"villages": scope, "forms": forms, "cadres": cadres, "states": reviews.STATES}


def _names():
    return ({v["id"]: v["name"] for v in villages.list_all()},
            users.display_names())


@bp.get("/review")
@role_required(*REVIEWERS)
def queue():
    wanted = filters.parse(default_state="received")
    rows = reviews.rows(current_user, wanted)
    pages = max(1, (len(rows) + PER_PAGE - 1) // PER_PAGE)
    page = min(int_arg("page", 1, 1, 100_000), pages)
    registry = formdefs.registry()
    village_names, user_names = _names()
    items = []
    for doc in reviews.open_rows(rows[(page - 1) * PER_PAGE: page * PER_PAGE]):
        household = households.get(doc["household_id"]) or {}
        items.append({"doc": doc, "head": household.get("head_name", ""),
                      "village": village_names.get(doc["village_id"], doc["village_id"]),
                      "cadre": user_names.get(doc.get("cadre_id"), doc.get("cadre_id")),
                      "form": present.form_title(registry.get(doc["form"], doc["form_version"]), doc["form"]),
                      "day": submissions.day_of(doc)})
    return render_template("review/queue.html", items=items, total=len(rows), page=page, pages=pages,
                           wanted=wanted, args=filters.as_args(wanted, state_all=True),
                           counts=reviews.counts(current_user, wanted),
                           can_bulk=wanted.state == "received" and bool(rows),
                           queue_mark=_queue_mark(rows), **_choices())


def _queue_mark(rows):
    """A fingerprint of the queue as shown: a bulk approval applies only to exactly what the
    supervisor confirmed, not to what arrived since."""
    import hashlib
    return hashlib.sha256("\n".join(r[2] for r in rows).encode()).hexdigest()[:32]


@bp.post("/review/approve-all")
@role_required(*REVIEWERS)
def approve_all():
    """Approve the whole filtered queue of waiting submissions: a first post shows the count and
    asks to confirm; the confirmed post approves exactly those (refused when the queue changed)."""
    wanted = filters.parse(request.form, default_state="received")
    args = filters.as_args(wanted, state_all=True)
    if wanted.state != "received":
        flash(tr("只能批量通过待审核的记录。", "Only submissions waiting for review can be approved together."),
              "error")
        return redirect(url_for("review.queue", **args))
    rows = reviews.rows(current_user, wanted)
    mark = _queue_mark(rows)
    if request.form.get("confirm") != "1":
        return render_template("review/approve_all.html", count=len(rows), mark=mark, wanted=wanted,
                               args=args)
    if request.form.get("mark") != mark:
        flash(tr("列表在确认期间有变化，请重新查看后再批量通过。",
                 "The queue changed while you were confirming; look again before approving them all."),
              "error")
        return redirect(url_for("review.queue", **args)), 303
    done = reviews.approve_many(current_user, [(r[3], r[2]) for r in rows])
    flash(tr(f"已批量通过 {done} 条记录。", f"Approved {done} submissions."))
    return redirect(url_for("review.queue", **args)), 303


def _neighbours(doc, wanted):
    """The submissions before and after `doc` in the queue as filtered (it need not be in it any
    more: a decision may just have moved it out)."""
    mine = (submissions.day_of(doc), doc.get("received_at") or "", doc["uuid"])
    before = after = None
    for row in reviews.rows(current_user, wanted):
        if row[:3] > mine:
            before = row[2]
        elif row[:3] < mine:
            after = row[2]
            break
    return before, after


def _answer(field, value, doc, comments):
    kind = field.get("type")
    item = {"name": field["name"], "label": present.label(field.get("label")) or field["name"],
            "kind": kind, "comment": comments.get(field["name"], ""), "answered": value not in (None, "", [])}
    if kind == "repeat":
        children = [c for c in field.get("fields") or [] if c.get("type") not in present.NOT_ANSWERS]
        item["columns"] = [present.label(c.get("label")) or c["name"] for c in children]
        item["column_names"] = [c["name"] for c in children]
        item["rows"] = [[present.text(c, entry.get(c["name"])) for c in children]
                        for entry in (value or []) if isinstance(entry, dict)]
    elif kind in present.FILE_TYPES:
        declared = next((a for a in doc.get("attachments") or [] if a["name"] == value), None)
        item["file"] = value
        item["received"] = bool(declared and declared.get("received"))
    elif kind == "geopoint" and isinstance(value, dict):
        item["point"] = value
        item["text"] = present.geopoint_text(value)
    else:
        item["text"] = present.text(field, value)
    return item


def _history_changes(doc):
    """The household changes this visit made, and the household as the visit found it."""
    household = households.get(doc["household_id"]) or {}
    history = households.history_of(current_user, doc["household_id"])
    changes = [e for e in history if e.get("submission") == doc["uuid"]]
    based = doc.get("base_version")
    if based is None and changes:
        based = changes[-1]["version"] - 1
    past = households.as_of(household, history, based) if household and based else None
    return household, past, based, changes


def _detail(sub_uuid, *, errors=(), form=None, status=200):
    doc = submissions.get_for(current_user, sub_uuid)
    if doc is None:
        abort(404)
    wanted = filters.parse(default_state="received")
    registry = formdefs.registry()
    definition = registry.get(doc["form"], doc["form_version"]) or {"fields": [], "title": {}}
    comments = dict((doc.get("review") or {}).get("fields") or {})
    answers = doc.get("answers") or {}
    applies = present.applicable(definition, answers)
    sections = [(title, [_answer(f, answers.get(f["name"]), doc, comments) for f in fields
                         if f["name"] in applies or answers.get(f["name"]) not in (None, "", [])])
                for title, fields in present.sections(definition)]
    sections = [(title, items) for title, items in sections if items]
    known = {f["name"] for f in present.questions(definition)}
    other_comments = {k: v for k, v in comments.items() if k not in known}
    household, past, based, changes = _history_changes(doc)
    corrected = _correction_diff(doc, definition, registry)
    village_names, user_names = _names()
    before, after = _neighbours(doc, wanted)
    args = filters.as_args(wanted, state_all=True)
    return render_template(
        "review/detail.html", doc=doc, definition=definition, sections=sections,
        form_title=present.form_title(definition, doc["form"]), household=household, past=past,
        based=based, changes=changes, village=village_names.get(doc["village_id"], doc["village_id"]),
        cadre=users.get(doc.get("cadre_id")) or {"display_name": doc.get("cadre_id")},
        user_names=user_names, other_comments=other_comments, before=before, after=after, args=args,
        errors=list(errors), error_fields={e.get("field") for e in errors}, form=form or {},
        complete=submissions.is_complete(doc), corrected=corrected,
        repeat_comments=_repeat_comments(comments),
        target_label=lambda name: present.target_label(definition, name),
        can_decide=not doc.get("superseded_by")), status


def _correction_diff(doc, definition, registry):
    """A correction shown against the visit it corrects: what changed, answer by answer."""
    if not doc.get("supersedes"):
        return None
    original = submissions.get_for(current_user, doc["supersedes"])
    if original is None:
        return None
    old_definition = registry.get(original["form"], original["form_version"]) or {"fields": []}
    return present.diff(old_definition, original.get("answers"), definition, doc.get("answers"))


def _repeat_comments(comments):
    """{repeat: {row index: {child: comment}}} from comments on single answers of a repeat."""
    out = {}
    for key, text in comments.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[1].isascii() and parts[1].isdigit():
            out.setdefault(parts[0], {}).setdefault(int(parts[1]), {})[parts[2]] = text
    return out


@bp.get("/review/<sub_uuid>")
@role_required(*REVIEWERS)
def detail(sub_uuid):
    return _detail(sub_uuid)


@bp.post("/review/<sub_uuid>")
@role_required(*REVIEWERS)
def decide(sub_uuid):
    doc = submissions.get_for(current_user, sub_uuid)
    if doc is None:
        abort(404)
    wanted = filters.parse(default_state="received")
    body = {"state": request.form.get("state"), "comment": request.form.get("comment", ""),
            "fields": {k[len("field."):]: v for k, v in request.form.items()
                       if k.startswith("field.") and v.strip()}}
    _before, after = _neighbours(doc, wanted)
    try:
        review = reviews.decide(current_user, doc, body, formdefs.registry(), require_reason=True)
    except Problem as p:
        if p.key != "invalid":
            raise
        return _detail(sub_uuid, errors=p.extra.get("errors") or [], form=request.form, status=400)
    flash(tr(f"已记录审核结果：{state_label(review['state'])}。",
             f"Decision recorded: {state_label(review['state'])}."))
    args = filters.as_args(wanted, state_all=True)
    if after:
        return redirect(url_for("review.detail", sub_uuid=after, **args))
    return redirect(url_for("review.queue", **args))
