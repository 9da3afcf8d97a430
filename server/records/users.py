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

from server.core import passwords as password_rules
from server.core import phones
from server.core.clock import app_setting, now_iso, today
from server.core.problems import field_error
from server.store import CORE, get_store
from server.records import audit

TABLE = "users"
CHANGE_REQUIRED = "password_change_required"  # set on an account whose password the system made up
ROLES = ("cadre", "supervisor", "admin")
USERNAME_MAX = 32
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{2,32}\Z")
# A mainland mobile: 11 digits starting 13-19 (spaces, dashes and a +86 prefix are dropped).
PASSWORD_MIN, PASSWORD_MAX = password_rules.MIN_LENGTH, password_rules.MAX_LENGTH
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
    return [field_error("password", zh, en) for zh, en in password_rules.length_problems(password)]


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
           actor="system", update=False, password_hash=None, one_time=False, store=None):
    """Create (or with update=True, reset) an account; returns (user_doc, errors).
    `password_hash` skips hashing (demo data uses a cheaper method). `one_time`: the system made
    the password up, so its owner must choose their own at first login."""
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
    if one_time:
        doc[CHANGE_REQUIRED] = True

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


def set_password(user_id, password, *, actor="system", one_time=False, db=None):
    """A new password ends every session of the account (a lost phone is locked out). `one_time`
    (a reset on the web): its owner must choose their own at the next login; a password given on
    the command line is theirs to keep."""
    errors = _password_errors(password)
    if errors:
        return None, errors
    new_hash = hash_password(password)

    def change(tx, doc):
        doc["password_hash"] = new_hash
        if one_time:
            doc[CHANGE_REQUIRED] = True
        else:
            doc.pop(CHANGE_REQUIRED, None)
        _revoke_sessions(doc)
        audit.record(tx, actor, "user_password", doc["id"], {"one_time": True} if one_time else {})
        return []

    return _change(user_id, actor, db, change)


def must_change_password(doc):
    """True while the account holds a password the system made up (import, a reset on the web)."""
    return bool(doc and doc.get(CHANGE_REQUIRED))


def change_own_password(user_id, current, new, *, db=None):
    """A person choosing their own password: the current one must be right, and the new one long
    enough, not the username, not common and not the current one (a one-time password kept is no
    change). Every other session of theirs ends. (doc, errors) with the fields current_password
    and new_password."""
    store = db or get_store()
    doc = get(user_id, store)
    if doc is None:
        return None, _not_found()
    if not check_password(doc, current):
        return None, [field_error("current_password", "当前密码不正确", "The current password is wrong")]
    found = password_rules.choice_problems(new, doc["id"])
    if not found and isinstance(new, str) and check_password(doc, new):
        found.append(("新密码不能与当前（一次性）密码相同", "The new password must differ from the current "
                      "(one-time) password"))
    if found:
        return None, [field_error("new_password", zh, en) for zh, en in found]
    new_hash = hash_password(new)

    def change(tx, doc):
        if doc.get("password_hash") != stored_hash:
            return [field_error("current_password", "密码刚被他人修改，请重新登录",
                                "The password was just changed elsewhere; log in again")]
        doc["password_hash"] = new_hash
        doc.pop(CHANGE_REQUIRED, None)
        _revoke_sessions(doc)
        audit.record(tx, user_id, "user_password_own", doc["id"], {})
        return []

    stored_hash = doc.get("password_hash")
    return _change(user_id, user_id, store, change)


def deactivate(user_id, *, actor="system", erase_phones=False, db=None):
    """The account logs in no more; with `erase_phones`, each of its phones is asked to send what it
    has not sent and then erase itself at its next contact (see the devices section below)."""
    def change(tx, doc):
        if doc.get("role") == "admin" and _active_admins(tx) == [doc["id"]]:
            return _last_admin_error()
        if actor == doc["id"]:
            return [field_error("active", "不能停用自己的账号", "You cannot deactivate your own account")]
        doc["active"] = False
        _revoke_sessions(doc)
        if erase_phones:
            doc["erase_requested"] = {"at": now_iso(), "by": actor}
        audit.record(tx, actor, "user_deactivate", doc["id"], {"erase_phones": True} if erase_phones else {})
        return []

    return _change(user_id, actor, db, change)


def activate(user_id, *, actor="system", db=None):
    def change(tx, doc):
        doc["active"] = True
        doc.pop("erase_requested", None)  # phones not erased yet keep their data
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


# ---- devices (a lost phone erased) --------------------------------------------------------------
#
# A phone registers once logged in and keeps a random device token (only its hash is stored, on
# the user record, under "devices"). The token answers one question without any session (a
# deactivated user has none): "should this phone erase itself?", true only once an admin
# deactivated the user asking for it. It is unguessable and only reads, so nobody can make another
# person's phone erase itself; the admin's request is what erases. While an erase is requested
# (and until that phone confirms), the token also carries the phone's last push of unsent visits,
# so the cadre's work is not lost with the phone. Survives session revocation on purpose.

MAX_DEVICES = 20


def register_device(user_id, db=None):
    """A new device token for a logged-in account (None when the account is inactive)."""
    token = secrets.token_urlsafe(32)
    digest = _token_hash(token)

    def write(tx):
        doc = tx.get(CORE, TABLE, user_id)
        if not is_active(doc):
            return None
        devices = dict(doc.get("devices") or {})
        devices[digest] = {"at": now_iso()}
        if len(devices) > MAX_DEVICES:  # the oldest go first
            devices = dict(sorted(devices.items(), key=lambda kv: kv[1]["at"])[-MAX_DEVICES:])
        doc["devices"] = devices
        return tx.put(CORE, TABLE, doc)

    return token if (db or get_store()).write(write) else None


def _device_owner(token, db):
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None, None
    digest = _token_hash(token)
    found = (db or get_store()).search(CORE, TABLE, lambda u: digest in (u.get("devices") or {}))
    return (found[0], digest) if found else (None, digest)


def device_erase_requested(token, db=None):
    """The account behind a device token when that phone is to erase itself, else None (an
    unknown token and "keep your data" look alike)."""
    doc, _digest = _device_owner(token, db)
    return doc if doc and doc.get("erase_requested") else None


def device_erased(token, db=None):
    """The phone says it erased itself: its token is forgotten and the audit log says so.
    Returns whether an erase was pending for that device."""
    doc, digest = _device_owner(token, db)
    if not doc or not doc.get("erase_requested"):
        return False

    def write(tx):
        fresh = tx.get(CORE, TABLE, doc["id"])
        if not fresh or digest not in (fresh.get("devices") or {}):
            return False
        del fresh["devices"][digest]
        tx.put(CORE, TABLE, fresh)
        audit.record(tx, doc["id"], "phone_erased", doc["id"], {"device": digest[:8]})
        return True

    return (db or get_store()).write(write)

# ---- who manages whom ----------------------------------------------------------------------------

MANAGERS = ("supervisor", "admin")


def manager_villages(actor_doc):
    """None when the actor manages every account (an admin, the command line), else the set of
    villages whose cadres a supervisor manages; an empty set for anyone else."""
    if actor_doc is None or actor_doc.get("role") == "admin":
        return None
    if actor_doc.get("role") == "supervisor":
        return set(actor_doc.get("villages") or [])
    return set()


def may_manage(actor_doc, target_doc):
    """An admin manages every account; a supervisor only the cadres whose every village is one of
    theirs (never an admin, a supervisor, or a cadre also working in another township)."""
    scope = manager_villages(actor_doc)
    if scope is None:
        return True
    if not target_doc or target_doc.get("role") != "cadre":
        return False
    theirs = set(target_doc.get("villages") or [])
    return bool(theirs) and theirs <= scope


def may_grant(actor_doc, role, villages):
    """May the actor give an account this role and these villages? (a supervisor: cadres of their
    own villages only)."""
    scope = manager_villages(actor_doc)
    if scope is None:
        return True
    wanted = set(villages or []) if isinstance(villages, (list, tuple, set)) else {None}
    return role == "cadre" and bool(wanted) and wanted <= scope


def record_refusal(actor, action, target, details=None, db=None):
    """A 403 leaves a trace: who tried what on whom (nothing else is written)."""
    (db or get_store()).write(lambda tx: audit.record(tx, actor, "forbidden", target or "",
                                                      dict(details or {}, attempted=action)))


def create_many(entries, *, actor, store=None):
    """Create several accounts in one write (the bulk import): entries are checked dicts
    {"username", "role", "villages", "display_name", "unit", "phone", "password"}, each given a
    one-time password. (stored docs, errors): nothing is written when any username is taken."""
    store = store or get_store()
    # PBKDF2 releases the GIL: hashing two at a time halves a township's wait (~0.2 s an account).
    from concurrent.futures import ThreadPoolExecutor
    method = password_method()
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = list(pool.map(lambda e: hash_password(e["password"], method), entries))
    docs = []
    for e, password_hash in zip(entries, hashes):
        doc = {"id": e["username"], "username": e["username"],
               "display_name": e.get("display_name") or e["username"], "role": e["role"],
               "villages": list(e.get("villages") or []), "unit": e.get("unit") or "",
               "phone": e.get("phone") or "", "active": True,
               "password_hash": password_hash, "session_gen": 0, "logins": {},
               CHANGE_REQUIRED: True}
        docs.append(doc)

    def write(tx):
        taken = [d["id"] for d in docs if tx.get(CORE, TABLE, d["id"]) is not None]
        if taken:
            return None, [field_error("username", f"用户名已存在：{'、'.join(taken)[:200]}",
                                      f"Username(s) taken: {', '.join(taken)[:200]}")]
        stored = []
        for d in docs:
            d["created_at"] = now_iso()
            stored.append(tx.put(CORE, TABLE, d))
            audit.record(tx, actor, "user_create", d["id"],
                         {"role": d["role"], "villages": d["villages"], "import": True})
        audit.record(tx, actor, "user_import", "", {"users": [d["id"] for d in docs]})
        return stored, []

    return store.write(write)


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
