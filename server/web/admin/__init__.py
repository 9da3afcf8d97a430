"""Admin pages (the `admin` blueprint): one module per area, each adding its routes to `bp`."""

from flask import Blueprint, redirect, url_for

from server.web.auth import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin", "supervisor")
def index():
    return redirect(url_for("admin.users"))


from server.web.admin import audit, roster, users  # noqa: E402,F401  (they add their routes to bp)
from server.web.admin import backup, forms, ledger, pairing, user_import, villages  # noqa: E402,F401
