"""Admin pages for accounts: the online twin of `user create`, `user set-password`, `user deactivate`,
`user activate` and `user set-villages`, plus the profile (name, role, phone, sending unit)."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.web.auth import refresh_login, role_required
from server.core.i18n import tr
from server.records import devices
from server.records import users as user_records
from server.records import villages
from server.services import openrosa
from server.web.admin import bp
from server.core import words


def _errors_by_field(errors):
    """{"field": [(zh, en), ...]} so each message sits beside its input."""
    out = {}
    for e in errors:
        out.setdefault(e.get("field") or "", []).append((e["zh"], e["en"]))
    return out


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
    all_villages = villages.list_all()
    return render_template("admin/users.html", users=user_records.list_all(), errors=errors,
                           villages=all_villages, names={v["id"]: v["name"] for v in all_villages},
                           form=request.form), (400 if errors else 200)


@bp.route("/users/<user_id>", methods=["GET", "POST"])
@role_required("admin")
def user_edit(user_id):
    doc = user_records.get(user_id)
    if doc is None:
        abort(404)
    errors, form = [], {}
    if request.method == "POST":
        action = request.form.get("action", "")
        before_gen = doc.get("session_gen")
        if action == "profile":
            form = request.form
            changed, errors = user_records.update(user_id, {
                "display_name": form.get("display_name", ""), "role": form.get("role", ""),
                "villages": form.getlist("villages"), "phone": form.get("phone", ""),
                "unit": form.get("unit", "")}, actor=current_user.id)
            done = tr(*words.pair("saved"))
        elif action == "password":
            password = request.form.get("password", "")
            if password != request.form.get("password2", ""):
                changed, errors = None, [{"field": "password", "zh": "两次输入的密码不一致",
                                          "en": "The two passwords differ"}]
            else:
                changed, errors = user_records.set_password(user_id, password, actor=current_user.id)
            done = tr("密码已重置，该用户需用新密码重新登录。",
                      "Password reset; the user must log in again with the new password.")
        elif action == "deactivate":
            changed, errors = user_records.deactivate(user_id, actor=current_user.id)
            done = tr("已停用，该用户的所有登录已失效。", "Deactivated; every session of the user has ended.")
        elif action == "activate":
            changed, errors = user_records.activate(user_id, actor=current_user.id)
            done = tr("已启用。", "Activated.")
        elif action == "device_create":
            token, errors = devices.create(user_id, request.form.get("label", ""), actor=current_user.id)
            if not errors:  # shown once, on this page: only the token's hash is kept
                return _edit_page(user_records.get(user_id), [], {}, new_device=_device_settings(token))
            changed = None
        elif action == "device_revoke":
            errors = devices.revoke(user_id, request.form.get("device", ""), actor=current_user.id)
            changed, done = doc, tr("已撤销该设备。", "The device was revoked.")
        else:
            abort(400)
        if not errors:
            if changed.get("session_gen") != before_gen:
                if action == "profile":
                    done += " " + tr("角色或村已变，该用户的所有登录已失效。",
                                     "Role or villages changed: every session of the user has ended.")
                if user_id == current_user.id:  # one's own change: stay logged in here
                    refresh_login(changed)
                    if changed.get("role") != "admin":
                        flash(done)
                        return redirect(url_for("households.index"))
            flash(done)
            return redirect(url_for("admin.user_edit", user_id=user_id))
    return _edit_page(doc, errors, form)


def _edit_page(doc, errors, form, new_device=None):
    return render_template("admin/user_edit.html", u=doc, errors=errors,
                           field_errors=_errors_by_field(errors), form=form,
                           villages=villages.list_all(), devices=devices.listed(doc),
                           new_device=new_device), (400 if errors else 200)


def _device_settings(token):
    """A new device's base URL and Collect's settings QR code (a PNG data URL)."""
    import base64
    import io

    import qrcode
    root = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    url = openrosa.base_url(root, token)
    image = qrcode.make(openrosa.collect_settings(url), box_size=6, border=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return {"url": url, "qr": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")}
