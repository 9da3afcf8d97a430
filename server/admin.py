"""Admin pages: accounts and roster upload, the online twins of `user create` and `import-roster`."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import roster
from .auth import role_required
from .i18n import tr
from .records import users as user_records
from .records import villages

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def index():
    return redirect(url_for("admin.users"))


@bp.route("/users", methods=["GET", "POST"])
@role_required("admin")
def users():
    errors = []
    if request.method == "POST":
        f = request.form
        doc, errors = user_records.create(f.get("username", ""), f.get("role", ""),
                                          f.get("password", ""), villages=f.getlist("villages"),
                                          display_name=f.get("display_name") or None,
                                          unit=f.get("unit", ""), phone=f.get("phone", ""),
                                          actor=current_user.id)
        if not errors:
            flash(tr(f"已创建用户 {doc['id']}。", f"User {doc['id']} created."))
            return redirect(url_for("admin.users"))
    return render_template("admin/users.html", users=user_records.list_all(), errors=errors,
                           villages=villages.in_scope(current_user), form=request.form), \
        (400 if errors else 200)


@bp.route("/roster", methods=["GET", "POST"])
@role_required("admin")
def roster_upload():
    scope = villages.in_scope(current_user)
    report, summary = [], None
    if request.method == "POST":
        village_id = request.form.get("village", "")
        upload = request.files.get("file")
        if village_id not in {v["id"] for v in scope}:
            report = [{"row": None, "column": None, "zh": "请选择村。", "en": "Choose a village."}]
        elif upload is None or not upload.filename:
            report = [{"row": None, "column": None, "zh": "请选择文件。", "en": "Choose a file."}]
        else:
            data = upload.read(current_app.config["MAX_ROSTER_BYTES"] + 1)
            if len(data) > current_app.config["MAX_ROSTER_BYTES"]:
                report = [{"row": None, "column": None, "zh": "文件太大（上限 5 MB）。",
                           "en": "The file is too large (5 MB at most)."}]
            else:
                summary, report = roster.import_upload(village_id, upload.filename, data,
                                                       actor=current_user.id)
    return render_template("admin/roster.html", villages=scope, report=report, summary=summary), \
        (400 if report else 200)
