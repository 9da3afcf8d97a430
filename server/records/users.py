"""Accounts (owner): create, change and look up users. Sessions and login live in auth.py."""

import re

from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import now_iso
from ..store import CORE, get_store
from . import audit

TABLE = "users"
ROLES = ("cadre", "supervisor", "admin")
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{2,32}\Z")
# A fast-enough hash for phones logging in from the field; still salted and slow to brute-force.
PASSWORD_METHOD = "pbkdf2:sha256:200000"
PUBLIC_FIELDS = ("id", "username", "display_name", "role", "villages", "unit", "phone", "active")


def get(user_id, db=None):
    if not isinstance(user_id, str) or not user_id:
        return None
    return (db or get_store()).get(CORE, TABLE, user_id)


def list_all(db=None):
    return sorted((db or get_store()).search(CORE, TABLE), key=lambda u: u["id"])


def cadres_of_village(village_id, db=None):
    return [u for u in list_all(db)
            if u.get("role") == "cadre" and village_id in (u.get("villages") or [])]


def public(doc):
    """What other people (and the phone) may see of an account: never the hash."""
    return {k: doc.get(k) for k in PUBLIC_FIELDS}


def check_password(doc, password):
    return (isinstance(password, str) and doc is not None
            and check_password_hash(doc.get("password_hash", ""), password))


def hash_password(password, method=PASSWORD_METHOD):
    return generate_password_hash(password, method=method)


def validate_new_user(username, role, villages, password, known_villages):
    errors = []
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        errors.append(("用户名须为 2–32 位小写字母、数字或 _.-", "Username: 2–32 lowercase letters, digits or _.-"))
    if role not in ROLES:
        errors.append(("角色须为 cadre、supervisor 或 admin", "Role must be cadre, supervisor or admin"))
    unknown = [v for v in villages if v not in known_villages]
    if unknown:
        errors.append((f"未知的村：{', '.join(map(str, unknown))[:200]}",
                       f"Unknown village(s): {', '.join(map(str, unknown))[:200]}"))
    if not isinstance(password, str) or len(password) < 8:
        errors.append(("密码至少 8 位", "Password must have at least 8 characters"))
    elif len(password) > 200:
        errors.append(("密码最多 200 位", "Password must have at most 200 characters"))
    return errors


def create(username, role, password, *, villages=(), display_name=None, unit="", phone="",
           actor="system", update=False, password_hash=None, store=None):
    """Create (or with update=True, reset) an account; returns (user_doc, errors).
    `password_hash` skips hashing (demo data uses a cheaper method)."""
    from . import villages as villages_owner
    store = store or get_store()
    username = (username or "").strip().lower() if isinstance(username, str) else ""
    villages = list(dict.fromkeys(villages or []))
    known = {v["id"] for v in villages_owner.list_all(store)}
    errors = validate_new_user(username, role, villages, password if password_hash is None else "x" * 8,
                               known)
    if errors:
        return None, errors
    doc = {"id": username, "username": username, "display_name": display_name or username,
           "role": role, "villages": villages, "unit": unit or "", "phone": phone or "", "active": True,
           "password_hash": password_hash or hash_password(password)}

    def write(tx):
        old = tx.get(CORE, TABLE, username)
        if old and not update:
            return None
        doc["created_at"] = old.get("created_at") if old else now_iso()
        stored = tx.put(CORE, TABLE, doc)
        audit.record(tx, actor, "user_update" if old else "user_create", username,
                     {"role": role, "villages": villages})
        return stored

    stored = store.write(write)
    if stored is None:
        return None, [("用户名已存在", "That username is taken")]
    return stored, []
