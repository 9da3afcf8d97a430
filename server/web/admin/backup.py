"""Admin page for backups: the same backup as `flask --app server backup OUT`, packed as one
tar.gz to download, with the last ones listed. One runs at a time. A restore from one of them (or
an uploaded archive) is checked at once and applies at the next start (the store is open in this
process); the page then says which phones have come back since."""

import os

from flask import (abort, current_app, flash, jsonify, redirect, render_template, request, send_file,
                   url_for)
from flask_login import current_user

from server.services import backup as backups
from server.services import restore as restores
from server.web.auth import role_required
from server.web.errors import wants_json
from server.core.i18n import tr
from server.core.problems import Problem
from server.web.admin import bp


def _status(runner):
    return {"running": runner.running, "error": runner.last_error,
            "backups": [{"name": b["name"], "size": b["size"], "time": backups.iso_of(b["mtime"]),
                         "url": url_for("admin.backup_download", name=b["name"])} for b in runner.list()],
            **restores.page_status(current_app.config)}


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


@bp.post("/backup/restore")
@role_required("admin")
def backup_restore():
    """Check a backup (one listed, `name`, or an uploaded archive, `archive`) and stage it: it
    replaces the data at the next start. Refused with a reason, nothing changed, when unusable."""
    config = current_app.config
    upload = request.files.get("archive")
    saved = None
    try:
        if upload is not None and upload.filename:
            saved = restores.upload_path(config)
            upload.save(saved)
            source, label = saved, upload.filename[:200]
        else:
            label = request.form.get("name")
            source = backups.of_app(current_app).path_of(label)
            if source is None and not restores.page_status(config)["restore_possible"]:
                raise Problem("restore_on_database")
            if source is None:
                raise restores.refuse("请选择列表中的一个备份，或上传备份文件。",
                                      "choose one of the listed backups or upload a backup archive.")
        summary = restores.stage_for_next_start(config, source, actor=current_user.id, label=label)
    except Problem as e:
        if wants_json():
            raise
        flash(tr(e.zh, e.en), "error")
        return redirect(url_for("admin.backup")), 303
    finally:
        if saved:
            try:
                os.remove(saved)
            except OSError:
                pass
    if wants_json():
        return jsonify({"staged": True, "pending_restore": summary}), 202
    flash(tr(f"备份已检查无误（{summary['villages']} 个村，{summary['households']} 户，"
             f"{summary['submissions']} 条记录），将在服务器下次启动时替换现有数据。请尽快重启服务器。",
             f"The backup checked out ({summary['villages']} villages, {summary['households']} "
             f"households, {summary['submissions']} submissions); it replaces the data when the server "
             f"next starts. Restart the server soon."))
    return redirect(url_for("admin.backup")), 303


@bp.post("/backup/restore/cancel")
@role_required("admin")
def backup_restore_cancel():
    restores.cancel_staged(current_app.config)
    if wants_json():
        return jsonify({"pending_restore": None})
    flash(tr("已取消待恢复的备份。", "The staged restore was cancelled."))
    return redirect(url_for("admin.backup")), 303
