"""A household's change history on its page, and undoing one change: a supervisor (or admin) in
scope confirms, and the owner puts the entry's `before` back as a new version (audited)."""

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from server.web.auth import role_required
from server.core.i18n import tr
from server.records import households, users
from server.web.review import bp

UNDOERS = users.REVIEWERS


def _entry(household_id):
    doc = households.get_for(current_user, household_id)
    if doc is None:
        abort(404)
    return doc


@bp.get("/households/<household_id>/history/<entry_id>/undo")
@role_required(*UNDOERS)
def undo_confirm(household_id, entry_id):
    doc = _entry(household_id)
    entry = households.history_entry(doc["village_id"], entry_id)
    if entry is None or entry.get("household_id") != household_id:
        abort(404)
    names = users.display_names()
    return render_template("households/undo.html", h=doc, entry=entry, user_names=names)


@bp.post("/households/<household_id>/history/<entry_id>/undo")
@role_required(*UNDOERS)
def undo(household_id, entry_id):
    _entry(household_id)
    doc, error = households.undo(current_user, household_id, entry_id)
    if error:
        abort(404)
    flash(tr(f"已撤销这次修改（现为第 {doc['version']} 版）。",
             f"The change was undone (now version {doc['version']})."))
    return redirect(url_for("households.detail", household_id=household_id) + "#history")
