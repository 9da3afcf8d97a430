"""Pages for accounts: the online twin of `user create`, `user set-password`, `user deactivate`,
`user activate` and `user set-villages`, plus the profile (name, role, phone, sending unit).
Admins manage everyone; a supervisor manages the cadres of their own villages (the rule is the
users owner's `may_manage`): anything else answers 403, writes nothing and is audited."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.core import passwords, words
from server.core.i18n import tr
from server.core.problems import Problem
from server.records import devices, households
from server.records import users as user_records
from server.records import villages
from server.services import openrosa
from server.web.admin import bp
from server.web.auth import refresh_login, role_required


NO_STORE = {"Cache-Control": "no-store"}  # a page showing a one-time password stays in no cache


def _errors_by_field(errors):
    """{"field": [(zh, en), ...]} so each message sits beside its input."""
    out = {}
    for e in errors:
        out.setdefault(e.get("field") or "", []).append((e["zh"], e["en"]))
    return out


def refuse(action, target, reason_zh, reason_en):
    """403 for an account the actor may not manage: nothing written but the audit entry."""
    user_records.record_refusal(current_user.id, action, target, {"reason": reason_en})
    raise Problem("users_forbidden", reason_zh=reason_zh, reason_en=reason_en)


def guard(action, doc):
    if not user_records.may_manage(current_user.doc, doc):
        refuse(action, doc["id"], "该账号不是你负责的村的驻村干部",
               "this account is not a cadre of your villages only")


def guard_grant(action, target, role, chosen):
    if not user_records.may_grant(current_user.doc, role, chosen):
        refuse(action, target, "只能授予驻村干部角色和你负责的村",
               "only the cadre role and your own villages may be given")


def villages_for_me():
    """The villages the actor may hand out: all for an admin, their own for a supervisor."""
    scope = user_records.manager_villages(current_user.doc)
    every = villages.list_all()
    return every if scope is None else [v for v in every if v["id"] in scope]


def _list_page(errors, form, created=None, status=200):
    all_villages = villages.list_all()
    shown = [u for u in user_records.list_all() if user_records.may_manage(current_user.doc, u)]
    return render_template("admin/users.html", users=shown, errors=errors, villages=villages_for_me(),
                           names={v["id"]: v["name"] for v in all_villages}, form=form,
                           created=created), status, NO_STORE if created else {}


@bp.route("/users", methods=["GET", "POST"])
@role_required(*user_records.MANAGERS)
def users():
    errors = []
    if request.method == "POST":
        f = request.form
        role, chosen = f.get("role", ""), f.getlist("villages")
        guard_grant("user_create", f.get("username", ""), role, chosen)
        password = f.get("password", "")
        made_up = not password  # left blank: the system makes one up, to be changed at first login
        if made_up:
            password = passwords.one_time()
        doc, errors = user_records.create(f.get("username", ""), role, password, villages=chosen,
                                          display_name=f.get("display_name") or None,
                                          unit=f.get("unit", ""), phone=f.get("phone", ""),
                                          actor=current_user.id, one_time=made_up)
        if not errors:
            if made_up:
                return _list_page([], {}, created=[dict(user_records.public(doc), password=password)])
            flash(tr(f"已创建用户 {doc['id']}。", f"User {doc['id']} created."))
            return redirect(url_for("admin.users"))
    return _list_page(errors, request.form, status=400 if errors else 200)


@bp.route("/users/<user_id>", methods=["GET", "POST"])
@role_required(*user_records.MANAGERS)
def user_edit(user_id):
    doc = user_records.get(user_id)
    if doc is None:
        abort(404)
    if request.method == "GET" and not user_records.may_manage(current_user.doc, doc):
        abort(403)
    errors, form, shown_password = [], {}, None
    if request.method == "POST":
        action = request.form.get("action", "")
        guard(f"user_{action}", doc)
        before_gen = doc.get("session_gen")
        if action == "profile":
            form = request.form
            guard_grant("user_update", user_id, form.get("role", ""), form.getlist("villages"))
            changed, errors = user_records.update(user_id, {
                "display_name": form.get("display_name", ""), "role": form.get("role", ""),
                "villages": form.getlist("villages"), "phone": form.get("phone", ""),
                "unit": form.get("unit", "")}, actor=current_user.id)
            done = tr(*words.pair("saved"))
        elif action == "password":
            password = request.form.get("password", "")
            one_time = user_id != current_user.id  # someone else's: theirs to replace at first login
            if not password and one_time:
                password = shown_password = passwords.one_time()
                changed, errors = user_records.set_password(user_id, password, actor=current_user.id,
                                                            one_time=True)
            elif password != request.form.get("password2", ""):
                changed, errors = None, [{"field": "password", "zh": "两次输入的密码不一致",
                                          "en": "The two passwords differ"}]
            else:
                changed, errors = user_records.set_password(user_id, password, actor=current_user.id,
                                                            one_time=one_time)
            done = tr("密码已重置，该用户需用新密码重新登录，并在首次登录时设置自己的密码。",
                      "Password reset; the user logs in again with it and sets their own at first login.") \
                if one_time else tr("密码已修改。", "Password changed.")
        elif action == "deactivate":
            changed, errors = _deactivate(doc)
            done = tr("已停用，该用户的所有登录已失效。", "Deactivated; every session of the user has ended.")
            if request.form.get("erase_phones") == "1":
                done += " " + tr("其手机下次联网时会先发出未发送的记录，然后清除手机上的数据。",
                                 "Their phones will send what is unsent at their next contact, then erase "
                                 "their data.")
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
            if shown_password:  # shown once, on this page only (never in a cookie nor a log)
                return _edit_page(changed, [], {}, shown_password=shown_password, done=done)
            flash(done)
            return redirect(url_for("admin.user_edit", user_id=user_id))
    return _edit_page(doc, errors, form, status=400 if errors else 200)


def _edit_page(doc, errors, form, status=200, **extra):
    return render_template("admin/user_edit.html", u=doc, errors=errors,
                           field_errors=_errors_by_field(errors), form=form,
                           villages=villages_for_me(), devices=devices.listed(doc), **extra), status, \
        NO_STORE if extra.get("shown_password") else {}


def _deactivate(doc):
    """Deactivate, first handing the user's paired households to `handover_to` when one is chosen
    (the pairing owner's move, its own write and audit)."""
    to = request.form.get("handover_to", "")
    if to:
        target = user_records.get(to)
        guard("pairing_move", target or {"id": to})
        _summary, errors = households.move_pairing(current_user.id, doc["id"], to)
        if errors:
            return None, errors
    return user_records.deactivate(doc["id"], actor=current_user.id,
                                   erase_phones=request.form.get("erase_phones") == "1")


def paired_households(user_id):
    """The households paired with this cadre, in every village they work in."""
    doc = user_records.get(user_id) or {}
    found = []
    for vid in doc.get("villages") or []:
        found.extend(households.in_village(vid, cond=lambda h: user_id in (h.get("cadre_ids") or [])))
    return found


@bp.get("/users/<user_id>/deactivate")
@role_required(*user_records.MANAGERS)
def user_deactivate_confirm(user_id):
    """Asks before deactivating, and offers to hand the user's households to another cadre who
    works in every village among them."""
    doc = user_records.get(user_id)
    if doc is None:
        abort(404)
    if not user_records.may_manage(current_user.doc, doc):
        abort(403)
    paired = paired_households(user_id)
    needed = {h["village_id"] for h in paired}
    others = [u for u in user_records.cadres_in(needed or doc.get("villages") or [], active_only=True)
              if u["id"] != user_id and needed <= set(u["villages"])
              and user_records.may_manage(current_user.doc, u)]
    return render_template("admin/user_deactivate.html", u=doc, paired=paired, others=others,
                           village_names={v["id"]: v["name"] for v in villages.list_all()})


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
