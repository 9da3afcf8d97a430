"""Admin pages for accounts: the online twin of `user create`."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..auth import role_required
from ..i18n import tr
from ..records import users as user_records
from ..records import villages
from . import bp


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
