"""Admin pages for villages: the online twin of `village create` / `village update`."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.web.auth import role_required
from server.core.i18n import tr
from server.records import households, villages
from server.web.admin import bp
from server.core import words

FIELDS = ("id", "name", "township", "county")


@bp.route("/villages", methods=["GET", "POST"])
@role_required("admin")
def villages_page():
    errors = []
    form = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in FIELDS}
        doc, errors = villages.create(form["id"].strip(), name=form["name"], township=form["township"],
                                      county=form["county"], actor=current_user.id)
        if not errors:
            flash(tr(f"已创建村 {doc['name']}（{doc['id']}）。", f"Village {doc['name']} ({doc['id']}) created."))
            return redirect(url_for("admin.villages_page"))
    rows = [dict(v, households=households.count_in_village(v["id"])) for v in villages.list_all()]
    return render_template("admin/villages.html", rows=rows, errors=errors, form=form), \
        (400 if errors else 200)


@bp.route("/villages/<village_id>", methods=["GET", "POST"])
@role_required("admin")
def village_edit(village_id):
    village = villages.get(village_id)
    if village is None:
        abort(404)
    errors = []
    if request.method == "POST":
        changes = {k: request.form.get(k, "") for k in ("name", "township", "county", "publicity_days")}
        doc, errors = villages.update(village_id, actor=current_user.id, **changes)
        if not errors and doc is not None:
            flash(tr(*words.pair("saved")))
            return redirect(url_for("admin.villages_page"))
        village = dict(village, **changes)
    return render_template("admin/village_edit.html", v=village, errors=errors,
                           publicity_default=villages.PUBLICITY_DAYS), (400 if errors else 200)
