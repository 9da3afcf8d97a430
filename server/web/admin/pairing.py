"""Admin page for pairing many households at once, and for handing a rotating cadre's households to
the cadre who takes over. The rules (who may be paired where, one write, audit) are the
households owner's."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.web.auth import role_required
from server.core.i18n import CATEGORY_LABELS, tr
from server.web.parse import text_arg
from server.core.problems import Problem
from server.records import households, users, villages
from server.web.admin import bp
from server.web.admin.users import guard


def _village_choice(scope, raw):
    if not raw:
        return scope[0] if scope else None
    for v in scope:
        if v["id"] == raw:
            return v
    raise Problem("village_not_found")


def _guard_cadre(action, cadre_id):
    """A supervisor pairs and rotates only cadres of their own villages (403, audited)."""
    doc = users.get(cadre_id) if isinstance(cadre_id, str) and cadre_id else None
    if doc is not None:
        guard(action, doc)


@bp.route("/pairing", methods=["GET", "POST"])
@role_required(*users.MANAGERS)
def pairing():
    scope = villages.in_scope(current_user)
    errors = []
    if request.method == "POST":
        action = request.form.get("action")
        if action == "move":
            _guard_cadre("pairing_move", request.form.get("from_cadre", ""))
            _guard_cadre("pairing_move", request.form.get("to_cadre", ""))
            summary, errors = households.move_pairing(
                current_user.id, request.form.get("from_cadre", ""), request.form.get("to_cadre", ""),
                village_id=request.form.get("move_village") or None)
            if not errors:
                flash(tr(f"已将 {summary['moved']} 户转给新的结对干部。",
                         f"{summary['moved']} households handed over to the new cadre."))
        else:
            _guard_cadre("pairing_bulk", request.form.get("cadre", ""))
            summary, errors = households.pair_many(
                current_user.id, request.form.getlist("household_ids")[:households.MAX_BULK + 1],
                request.form.get("cadre", ""), replace=request.form.get("mode") == "replace")
            if not errors:
                flash(tr(f"已为 {summary['selected']} 户设置结对（{summary['changed']} 户有变化）。",
                         f"Pairing set for {summary['selected']} households ({summary['changed']} changed)."))
        if not errors:
            return redirect(url_for("admin.pairing", **{k: v for k, v in request.args.items()}))
    village = _village_choice(scope, request.args.get("village", ""))
    group = text_arg("group", 50)
    category = request.args.get("category") or None
    if category not in CATEGORY_LABELS:
        category = None
    unpaired = request.args.get("unpaired") == "1"
    of_cadre = request.args.get("of_cadre") or None
    rows, groups = [], []
    if village:
        every = households.in_village(village["id"])
        groups = sorted({h.get("group", "") for h in every if h.get("group")})
        rows = [h for h in every
                if (not group or h.get("group") == group)
                and (not category or h.get("category") == category)
                and (not unpaired or not h.get("cadre_ids"))
                and (not of_cadre or of_cadre in (h.get("cadre_ids") or []))]
    names = users.display_names()
    cadres = [u for u in users.cadres_in([v["id"] for v in scope], active_only=True)
              if users.may_manage(current_user.doc, u)]
    here = [u for u in cadres if village and village["id"] in (u.get("villages") or [])]
    if current_user.is_admin:
        leaving = list(names.items())
    else:  # a supervisor: the cadres of their villages, deactivated ones too
        leaving = [(u["id"], u["display_name"]) for u in users.directory().values()
                   if users.may_manage(current_user.doc, u)]
    return render_template("admin/pairing.html", scope=scope, village=village, rows=rows, groups=groups,
                           group=group, category=category, unpaired=unpaired, of_cadre=of_cadre,
                           categories=CATEGORY_LABELS, cadres=cadres, here=here, names=names, leaving=leaving,
                           errors=errors), (400 if errors else 200)
