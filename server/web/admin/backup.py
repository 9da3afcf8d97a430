"""Admin page for backups: the same backup as `flask --app server backup OUT`, packed as one
tar.gz to download, with the last ones listed. One runs at a time."""

from flask import abort, current_app, flash, jsonify, redirect, render_template, send_file, url_for
from flask_login import current_user

from server.services import backup as backups
from server.web.auth import role_required
from server.web.errors import wants_json
from server.core.i18n import tr
from server.web.admin import bp


def _status(runner):
    return {"running": runner.running, "error": runner.last_error,
            "backups": [{"name": b["name"], "size": b["size"], "time": backups.iso_of(b["mtime"]),
                         "url": url_for("admin.backup_download", name=b["name"])} for b in runner.list()]}


@bp.get("/backup")
@role_required("admin")
def backup():
    runner = backups.of_app(current_app)
    status = _status(runner)
    if wants_json():
        return jsonify(status)
    return render_template("admin/backup.html", status=status)


@bp.post("/backup")
@role_required("admin")
def backup_start():
    runner = backups.of_app(current_app)
    started = backups.start_for(current_app, current_user.id)
    if wants_json():
        return jsonify(dict(_status(runner), started=started)), (202 if started else 409)
    if started:
        flash(tr("正在备份，完成后会出现在下面的列表中（刷新页面查看）。",
                 "The backup is running; it appears in the list below when done (reload the page)."))
    else:
        flash(tr("已有一个备份正在进行，请稍后再试。", "A backup is already running; try again shortly."), "error")
    return redirect(url_for("admin.backup")), 303


@bp.get("/backup/<name>")
@role_required("admin")
def backup_download(name):
    path = backups.of_app(current_app).path_of(name)
    if path is None:
        abort(404)
    return send_file(path, mimetype="application/gzip", as_attachment=True, download_name=name,
                     conditional=True)
