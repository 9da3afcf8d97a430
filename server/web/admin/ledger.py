"""/admin/ledger: the online twin of `import-ledger`. Upload -> preview (nothing written; the files
kept server-side under a token) -> confirm (the same files, with the clashes the person chose to
take from the file). Supervisors for their villages, admins everywhere."""

from flask import current_app, render_template, request, send_file
from flask_login import current_user

import io

from server.records import villages
from server.services import ledger
from server.web.admin import bp
from server.web.auth import role_required


def _error(zh, en):
    return {"sheet": None, "row": None, "column": None, "zh": zh, "en": en}


def _shown(report):
    return report if current_user.is_admin else ledger.masked_report(report)


def _page(scope, report=None, token=None, village_id=None, done=False, status=200):
    return render_template("admin/ledger.html", villages=scope, report=_shown(report) if report else None,
                           token=token, village_id=village_id, done=done), status


@bp.route("/ledger", methods=["GET", "POST"])
@role_required("supervisor", "admin")
def ledger_upload():
    scope = villages.in_scope(current_user)
    if request.method == "GET":
        return _page(scope)
    village_id = request.form.get("village", "")
    uploads = [u for u in request.files.getlist("file") if u and u.filename][:5]
    if village_id not in {v["id"] for v in scope}:
        return _page(scope, ledger.empty_report([_error("请选择村。", "Choose a village.")]), status=400)
    if not uploads:
        return _page(scope, ledger.empty_report([_error("请选择文件。", "Choose a file.")]),
                     village_id=village_id, status=400)
    files = []
    for u in uploads:
        data = u.read(ledger.MAX_BYTES + 1)
        files.append((u.filename, data))
    report, _work = ledger.run(village_id, files, actor=current_user.id, confirm=False)
    token = None
    if not report["errors"]:
        token = ledger.stage(current_app.config["FILES_DIR"], current_user.id, village_id, files)
    return _page(scope, report, token, village_id, status=400 if report["errors"] else 200)


@bp.post("/ledger/confirm")
@role_required("supervisor", "admin")
def ledger_confirm():
    scope = villages.in_scope(current_user)
    token = request.form.get("token", "")
    found = ledger.staged(current_app.config["FILES_DIR"], token, current_user.id)
    if found is None or found[0] not in {v["id"] for v in scope}:
        return _page(scope, ledger.empty_report([_error("预览已过期，请重新上传文件。",
                                                       "The preview has expired; upload the file again.")]),
                     status=400)
    village_id, files = found
    take = [t for t in request.form.getlist("take") if isinstance(t, str) and len(t) < 300]
    report, _work = ledger.run(village_id, files, actor=current_user.id, confirm=True, take=take)
    if not report["errors"]:
        ledger.unstage(current_app.config["FILES_DIR"], token)
    return _page(scope, report, None, village_id, done=not report["errors"],
                 status=400 if report["errors"] else 200)


@bp.get("/ledger/template.xlsx")
@role_required("supervisor", "admin")
def ledger_template():
    return send_file(io.BytesIO(ledger.template_xlsx()), as_attachment=True,
                     download_name="ledger-template.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
