"""Accounts (owner): create, change and look up users, and the logins (sessions) each one holds.

A login is a random token handed to one device; only its hash is stored, on the user record, with the
day it was last used. A session or remember-me cookie names the user, the user's session generation
and the token (see `login_id`), so:
- logout drops that one token (the user's other devices stay logged in);
- a password change, a deactivation, a change of villages or of role bumps the generation and drops
  every token: every cookie of that user stops working at once;
- a token unused for LOGIN_IDLE_DAYS lapses, and a user holds at most MAX_LOGINS (the oldest goes).
Login and logout themselves live in auth.py; nothing here knows HTTP.
"""

import hashlib
import re
import secrets
from datetime import date

from werkzeug.security import check_password_hash, generate_password_hash

from server.core import phones
from server.core.clock import app_setting, now_iso, today
from server.core.problems import field_error
from server.store import CORE, get_store
from server.records import audit

TABLE = "users"
ROLES = ("cadre", "supervisor", "admin")
USERNAME_MAX = 32
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{2,32}\Z")
# A mainland mobile: 11 digits starting 13-19 (spaces, dashes and a +86 prefix are dropped).
PASSWORD_MIN, PASSWORD_MAX = 8, 200
DISPLAY_NAME_MAX, UNIT_MAX = 50, 100
# A fast-enough hash for phones logging in from the field; still salted and slow to brute-force.
PASSWORD_METHOD = "pbkdf2:sha256:200000"
PUBLIC_FIELDS = ("id", "username", "display_name", "role", "villages", "unit", "phone", "active")
# Phones sync after days offline: a login lasts while it is used at least once in this many days
# (the same as the remember-me cookie).
LOGIN_IDLE_DAYS = 60
MAX_LOGINS = 20

# Checked when the username is unknown, so an unknown name costs the same time as a wrong password
# (one per method: a TESTING app may hash with a cheaper one).
_DUMMY_HASHES = {}


def get(user_id, db=None):
    if not isinstance(user_id, str) or not user_id:
        return None
    return (db or get_store()).get(CORE, TABLE, user_id)


def list_all(db=None):
    return sorted((db or get_store()).search(CORE, TABLE), key=lambda u: u["id"])


REVIEWERS = ("supervisor", "admin")  # who reviews submissions, undoes changes, sees the dashboard


def is_reviewer(user):
    return getattr(user, "role", None) in REVIEWERS


def cadres_in(village_ids, *, active_only=False, db=None):
    """The cadre accounts working in any of `village_ids` (their directory entries), by id."""
    wanted = set(village_ids)
    return [u for _, u in sorted(directory(db).items())
            if u["role"] == "cadre" and wanted.intersection(u["villages"])
            and (not active_only or u["active"])]


def cadres_of_village(village_id, db=None):
    return cadres_in([village_id], db=db)


def display_names(db=None):
    """{id: the name people read} of every account (the id when it has none)."""
    return {uid: u["display_name"] for uid, u in directory(db).items()}


def public(doc):
    """What other people (and the phone) may see of an account: never the hash nor the logins."""
    return {k: doc.get(k) for k in PUBLIC_FIELDS}


def is_active(doc):
    return bool(doc and doc.get("active", True))


# ---- passwords --------------------------------------------------------------------------------


def password_method(default=PASSWORD_METHOD):
    """`default`, except in a TESTING app that asked for a cheaper method (PASSWORD_HASH_METHOD, set
    only by the tests: 200,000 rounds were most of each test's set-up). config.py refuses the
    setting without TESTING, and it is ignored here unless TESTING is on, so production never
    hashes cheaply."""
    if app_setting("TESTING") is True:
        return app_setting("PASSWORD_HASH_METHOD") or default
    return default


def hash_password(password, method=None):
    return generate_password_hash(password, method=method or password_method())


def _dummy_hash():
    method = password_method()
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = hash_password(secrets.token_urlsafe(16), method)
    return _DUMMY_HASHES[method]


def _pbkdf2_iterations(stored):
    """The iteration count of a werkzeug "pbkdf2:HASH:N$salt$hash", or None for other methods."""
    parts = stored.split("$", 1)[0].split(":")
    if len(parts) == 3 and parts[0] == "pbkdf2" and parts[2].isdigit():
        return int(parts[2])
    return None


STANDARD_ITERATIONS = _pbkdf2_iterations(PASSWORD_METHOD)


def _pay_the_rest(stored):
    """A hash cheaper than the method in use (an older account, or one made before the cost rose)
    is topped up to its cost, so no answer tells such an account from the others; the next
    successful login rehashes it (`rehash_if_needed`)."""
    n = _pbkdf2_iterations(stored)
    standard = _pbkdf2_iterations(password_method())
    if n is not None and standard is not None and n < standard:
        hashlib.pbkdf2_hmac("sha256", b"jiedui", b"equal-cost", standard - n)


def check_password(doc, password):
    """True when `password` is the account's. Every check costs one hash of the method in use: an
    unknown account (or a name no account can have: doc None) is checked against a dummy hash of
    that method, a cheaper stored hash is topped up to it."""
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        password = ""   # still checked, at the same cost, and never matches a real password
    stored = doc.get("password_hash") if doc else None
    if not stored:
        check_password_hash(_dummy_hash(), password)
        return False
    ok = check_password_hash(stored, password) and password != ""
    _pay_the_rest(stored)
    return ok


def rehash_if_needed(doc, password):
    """After a successful check: (old hash, new hash) when the stored hash is not of the method in
    use (PASSWORD_METHOD; cheaper, dearer or another algorithm), else None. `start_login` stores it."""
    stored = doc.get("password_hash") or ""
    if stored.startswith(password_method() + "$"):
        return None
    return stored, hash_password(password)


def normalise_username(raw):
    """The lower-cased name, or None when it can't be an account's name (too long, bad characters):
    nothing about such a name is ever stored."""
    if not isinstance(raw, str) or len(raw) > USERNAME_MAX + 8:
        return None
    name = raw.strip().lower()
    return name if USERNAME_RE.match(name) else None


# ---- validation ---------------------------------------------------------------------------------


def _known_villages(db):
    from server.records import villages as villages_owner
    return {v["id"] for v in villages_owner.list_all(db)}


def _clean_text(value, limit):
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        return None
    return value.strip()


def _password_errors(password):
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        return [field_error("password", f"密码至少 {PASSWORD_MIN} 位",
                            f"Password must have at least {PASSWORD_MIN} characters")]
    if len(password) > PASSWORD_MAX:
        return [field_error("password", f"密码最多 {PASSWORD_MAX} 位",
                            f"Password must have at most {PASSWORD_MAX} characters")]
    return []


def _villages_errors(villages, known):
    if not isinstance(villages, (list, tuple)) or not all(isinstance(v, str) for v in villages):
        return [field_error("villages", "村的列表不正确", "The list of villages is not valid")]
    unknown = [v for v in villages if v not in known]
    if unknown:
        shown = ", ".join(unknown)[:200]
        return [field_error("villages", f"未知的村：{shown}", f"Unknown village(s): {shown}")]
    return []


def check_profile(fields, known_villages):
    """(clean, errors) for the changeable fields present in `fields`: display_name, role, villages,
    phone, unit. Errors are field errors {"field", "zh", "en"}."""
    clean, errors = {}, []
    if "display_name" in fields:
        name = _clean_text(fields["display_name"], DISPLAY_NAME_MAX)
        if name is None:
            errors.append(field_error("display_name", f"姓名最多 {DISPLAY_NAME_MAX} 字，不含控制字符",
                                      f"Name: at most {DISPLAY_NAME_MAX} characters, no control characters"))
        else:
            clean["display_name"] = name
    if "role" in fields:
        if fields["role"] not in ROLES:
            errors.append(field_error("role", "角色须为 cadre、supervisor 或 admin",
                                      "Role must be cadre, supervisor or admin"))
        else:
            clean["role"] = fields["role"]
    if "villages" in fields:
        villages = fields["villages"]
        found = _villages_errors(villages, known_villages)
        errors.extend(found)
        if not found:
            clean["villages"] = list(dict.fromkeys(villages))
    if "phone" in fields:
        phone = phones.normalise(fields["phone"], landline=False)
        if phone is None:
            errors.append(field_error("phone", "手机号须为 11 位大陆手机号（如 13800138000）",
                                      "Phone must be an 11-digit mainland mobile (e.g. 13800138000)"))
        else:
            clean["phone"] = phone
    if "unit" in fields:
        unit = _clean_text(fields["unit"], UNIT_MAX)
        if unit is None:
            errors.append(field_error("unit", f"派出单位最多 {UNIT_MAX} 字",
                                      f"Sending unit: at most {UNIT_MAX} characters"))
        else:
            clean["unit"] = unit
    return clean, errors


def validate_new_user(username, role, villages, password, known_villages):
    errors = []
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        errors.append(field_error("username", "用户名须为 2–32 位小写字母、数字或 _.-",
                                  "Username: 2–32 lowercase letters, digits or _.-"))
    _clean, profile_errors = check_profile({"role": role, "villages": villages}, known_villages)
    errors.extend(profile_errors)
    errors.extend(_password_errors(password))
    return errors


# ---- creating and changing accounts -------------------------------------------------------------


def _revoke_sessions(doc):
    """Every session and remember-me cookie of this account stops working."""
    doc["session_gen"] = int(doc.get("session_gen") or 0) + 1
    doc["logins"] = {}


def create(username, role, password, *, villages=(), display_name=None, unit="", phone="",
           actor="system", update=False, password_hash=None, store=None):
    """Create (or with update=True, reset) an account; returns (user_doc, errors).
    `password_hash` skips hashing (demo data uses a cheaper method)."""
    store = store or get_store()
    username = (username or "").strip().lower() if isinstance(username, str) else ""
    villages = list(dict.fromkeys(villages or [])) if isinstance(villages, (list, tuple)) else villages
    known = _known_villages(store)
    errors = validate_new_user(username, role, villages,
                               password if password_hash is None else "x" * PASSWORD_MIN, known)
    profile, profile_errors = check_profile({"display_name": display_name, "phone": phone or "",
                                             "unit": unit or ""}, known)
    errors.extend(profile_errors)
    if errors:
        return None, errors
    doc = {"id": username, "username": username, "display_name": profile["display_name"] or username,
           "role": role, "villages": villages, "unit": profile["unit"], "phone": profile["phone"],
           "active": True, "password_hash": password_hash or hash_password(password),
           "session_gen": 0, "logins": {}}

    def write(tx):
        old = tx.get(CORE, TABLE, username)
        if old and not update:
            return None
        doc["created_at"] = old.get("created_at") if old else now_iso()
        if old:  # a reset account keeps none of its old sessions
            doc["session_gen"] = int(old.get("session_gen") or 0) + 1
        stored = tx.put(CORE, TABLE, doc)
        audit.record(tx, actor, "user_update" if old else "user_create", username,
                     {"role": role, "villages": villages})
        return stored

    stored = store.write(write)
    if stored is None:
        return None, [field_error("username", "用户名已存在", "That username is taken")]
    return stored, []


def _not_found():
    return [field_error("username", "找不到该用户", "No such user")]


def _active_admins(tx):
    return [u["id"] for u in tx.search(CORE, TABLE, lambda u: u.get("role") == "admin"
                                       and u.get("active", True))]


def _change(user_id, actor, db, change):
    """Run change(tx, doc) -> errors inside one write; the doc is stored only when there are none."""
    store = db or get_store()

    def write(tx):
        doc = tx.get(CORE, TABLE, user_id) if isinstance(user_id, str) and user_id else None
        if doc is None:
            return None, _not_found()
        errors = change(tx, doc)
        if errors:
            return None, errors
        return tx.put(CORE, TABLE, doc), []

    return store.write(write)


def _last_admin_error():
    return [field_error("role", "至少要保留一个启用的管理员账号",
                        "At least one active administrator account must remain")]


def set_password(user_id, password, *, actor="system", db=None):
    """A new password ends every session of the account (a lost phone is locked out)."""
    errors = _password_errors(password)
    if errors:
        return None, errors
    new_hash = hash_password(password)

    def change(tx, doc):
        doc["password_hash"] = new_hash
        _revoke_sessions(doc)
        audit.record(tx, actor, "user_password", doc["id"], {})
        return []

    return _change(user_id, actor, db, change)


def deactivate(user_id, *, actor="system", db=None):
    def change(tx, doc):
        if doc.get("role") == "admin" and _active_admins(tx) == [doc["id"]]:
            return _last_admin_error()
        if actor == doc["id"]:
            return [field_error("active", "不能停用自己的账号", "You cannot deactivate your own account")]
        doc["active"] = False
        _revoke_sessions(doc)
        audit.record(tx, actor, "user_deactivate", doc["id"], {})
        return []

    return _change(user_id, actor, db, change)


def activate(user_id, *, actor="system", db=None):
    def change(tx, doc):
        doc["active"] = True
        audit.record(tx, actor, "user_activate", doc["id"], {})
        return []

    return _change(user_id, actor, db, change)


def set_villages(user_id, villages, *, actor="system", db=None):
    return update(user_id, {"villages": list(villages) if isinstance(villages, (list, tuple)) else villages},
                  actor=actor, db=db)


def update(user_id, fields, *, actor="system", db=None):
    """Change display_name, role, villages, phone and/or unit. A change of role or villages ends
    every session of the account: what it may see has changed."""
    known = _known_villages(db or get_store())
    clean, errors = check_profile(fields, known)
    if errors:
        return None, errors

    def change(tx, doc):
        changed = {k: v for k, v in clean.items() if doc.get(k) != v}
        if not changed:
            return []
        if "role" in changed and doc.get("role") == "admin" and doc.get("active", True) \
                and _active_admins(tx) == [doc["id"]]:
            return _last_admin_error()
        doc.update(changed)
        if "role" in changed or "villages" in changed:
            _revoke_sessions(doc)
        action = "user_villages" if set(changed) == {"villages"} else "user_update"
        audit.record(tx, actor, action, doc["id"], changed)
        return []

    return _change(user_id, actor, db, change)


# ---- logins (sessions) ----------------------------------------------------------------------------


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def _days_since(day_iso, today_date):
    try:
        return (today_date - date.fromisoformat(day_iso)).days
    except (TypeError, ValueError):
        return LOGIN_IDLE_DAYS + 1


def _live(logins, today_date):
    return {h: e for h, e in (logins or {}).items()
            if _days_since(e.get("seen"), today_date) <= LOGIN_IDLE_DAYS}


def login_id(doc, token):
    """What a session and a remember-me cookie carry: user, generation and this login's token."""
    return f"{doc['id']}:{int(doc.get('session_gen') or 0)}:{token}"


def start_login(user_id, db=None, rehash=None):
    """A new login for an active account: (doc, login_id), or (None, None). `rehash` (old, new)
    from `rehash_if_needed` replaces the password hash in the same write, unless it changed
    meanwhile; sessions stay (the password is the same)."""
    token = secrets.token_urlsafe(24)
    digest = _token_hash(token)
    day = today()

    def write(tx):
        doc = tx.get(CORE, TABLE, user_id)
        if not is_active(doc):
            return None
        if rehash and doc.get("password_hash") == rehash[0]:
            doc["password_hash"] = rehash[1]
        logins = _live(doc.get("logins"), day)
        logins[digest] = {"at": now_iso(), "seen": day.isoformat()}
        if len(logins) > MAX_LOGINS:  # the least recently used go first
            keep = sorted(logins.items(), key=lambda kv: (kv[1]["seen"], kv[1]["at"]))[-MAX_LOGINS:]
            logins = dict(keep)
        doc["logins"] = logins
        return tx.put(CORE, TABLE, doc)

    doc = (db or get_store()).write(write)
    return (doc, login_id(doc, token)) if doc else (None, None)


def _split(login):
    if not isinstance(login, str) or len(login) > 200:
        return None
    parts = login.split(":")
    if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def resolve_login(login, db=None):
    """The account a cookie's login id stands for, or None when the login was ended, revoked or
    has lapsed, or the account is inactive. A login used on a new day is marked as seen."""
    parts = _split(login)
    if parts is None:
        return None
    user_id, gen, token = parts
    # The stored document itself, not a copy: every request of a logged-in person reads it, and
    # the account's logins make it grow; the User built on it only reads it.
    doc = (db or get_store()).peek(CORE, TABLE, user_id) if user_id else None
    if not is_active(doc) or int(doc.get("session_gen") or 0) != gen:
        return None
    digest = _token_hash(token)
    entry = (doc.get("logins") or {}).get(digest)
    day = today()
    if entry is None or _days_since(entry.get("seen"), day) > LOGIN_IDLE_DAYS:
        return None
    if entry.get("seen") != day.isoformat():
        _touch(user_id, gen, digest, day, db)
    return doc


def _touch(user_id, gen, digest, day, db):
    def write(tx):
        doc = tx.get(CORE, TABLE, user_id)
        if not doc or int(doc.get("session_gen") or 0) != gen or digest not in (doc.get("logins") or {}):
            return None
        doc["logins"][digest]["seen"] = day.isoformat()
        return tx.put(CORE, TABLE, doc)

    (db or get_store()).write(write)


def end_login(login, db=None):
    """Logout: this login's token stops working; the account's other devices stay logged in."""
    parts = _split(login)
    if parts is None:
        return
    user_id, _gen, token = parts
    digest = _token_hash(token)

    def write(tx):
        doc = tx.get(CORE, TABLE, user_id)
        if not doc or digest not in (doc.get("logins") or {}):
            return None
        del doc["logins"][digest]
        return tx.put(CORE, TABLE, doc)

    (db or get_store()).write(write)


def directory(db=None):
    """{id: {"id", "display_name", "role", "villages", "unit", "active"}} of every account, read without copying
    whole records (no password hashes): names and scopes for pages that list many people."""
    out = {}

    def visit(u):
        out[u["id"]] = {"id": u["id"], "display_name": u.get("display_name") or u["id"],
                        "role": u.get("role"), "villages": tuple(u.get("villages") or ()),
                        "unit": u.get("unit") or "", "active": u.get("active", True)}
    (db or get_store()).search(CORE, TABLE, lambda u: visit(u) and False)
    return out
