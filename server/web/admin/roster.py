"""Admin page for roster upload: the online twin of `import-roster`."""

from flask import current_app, render_template, request
from flask_login import current_user

from server.services import roster
from server.web.auth import role_required
from server.records import villages
from server.web.admin import bp


@bp.route("/roster", methods=["GET", "POST"])
@role_required("admin", "supervisor")  # a supervisor: their own villages (villages.in_scope)
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
