"""Configuration from the environment (JIEDUI_DATA_DIR, JIEDUI_SECRET_KEY, ...) with safe defaults:
every setting the server reads is read here, once, at start."""

import os
import secrets
from datetime import timedelta

from server.core import images
from server.web.security import proxy_address, proxy_hops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# An installed copy (`pip install .`) has no checkout around it: the wheel carries forms/ and
# static/ inside the package (pyproject.toml), and the data folder defaults to ./data instead.
_INSTALLED_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_assets")
ASSETS = _INSTALLED_ASSETS if os.path.isdir(_INSTALLED_ASSETS) else ROOT


def _default_data_dir():
    return os.path.join(ROOT, "data") if ASSETS == ROOT else os.path.abspath("data")


def _secret_key(data_dir):
    """Generated once into the data folder, so sessions survive restarts without any set-up."""
    path = os.path.join(data_dir, "secret_key")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _memory_mb(text):
    """JIEDUI_MEMORY_MB as a positive number of MB; None (the default) when unset or not one."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value < 1 << 40:
        import logging
        logging.getLogger(__name__).warning("JIEDUI_MEMORY_MB=%r is not a positive number of MB; "
                                            "using the default", text)
        return None
    return value


def _number(name, default):
    """A non-negative number from the environment, or the default; a typo stops the start."""
    text = os.environ.get(name)
    try:
        value = float(text or default)
    except ValueError:
        raise RuntimeError(f"{name} must be a number, not {text!r}") from None
    return value if value == value and 0 <= value < 1e9 else default


def configure(app, test_config=None):
    test_config = dict(test_config or {})
    if "PASSWORD_HASH_METHOD" in test_config and test_config.get("TESTING") is not True:
        # A cheap password hash is for the tests' throw-away accounts only (records/users.py).
        raise ValueError("PASSWORD_HASH_METHOD may only be set together with TESTING=True")
    data_dir = os.path.abspath(test_config.pop("DATA_DIR", None)
                               or os.environ.get("JIEDUI_DATA_DIR")
                               or _default_data_dir())
    os.makedirs(data_dir, exist_ok=True)
    secure = os.environ.get("JIEDUI_SECURE_COOKIES", "") in ("1", "true", "yes")
    database_url = test_config.pop("DATABASE_URL", None) or os.environ.get("JIEDUI_DATABASE_URL") or None
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        raise ValueError("JIEDUI_DATABASE_URL must start with postgresql:// (unset: the TinyDB store "
                         "in the data folder)")
    files_dir = os.path.abspath(test_config.pop("FILES_DIR", None) or os.environ.get("JIEDUI_FILES_DIR")
                                or data_dir)
    os.makedirs(files_dir, exist_ok=True)
    app.config.update(
        DATA_DIR=data_dir,
        # Attachments and rendered PDFs; shared by every app server once several serve one database.
        FILES_DIR=files_dir,
        # PostgreSQL instead of TinyDB (store_pg.py): several app servers may share one database.
        DATABASE_URL=database_url,
        DB_POOL_SIZE=int(os.environ.get("JIEDUI_DB_POOL_SIZE", "10")),
        DB_POOL_TIMEOUT=float(os.environ.get("JIEDUI_DB_POOL_TIMEOUT", "5")),
        DB_CONNECT_TIMEOUT=float(os.environ.get("JIEDUI_DB_CONNECT_TIMEOUT", "5")),
        TIMEZONE=os.environ.get("JIEDUI_TIMEZONE") or "Asia/Shanghai",
        FORMS_DIR=os.path.join(ASSETS, "forms"),
        STATIC_APP_DIR=os.path.join(ASSETS, "static"),
        # On a database every app server must sign sessions alike: the key lives in the shared folder.
        SECRET_KEY=os.environ.get("JIEDUI_SECRET_KEY") or _secret_key(files_dir if database_url else data_dir),
        # Phones sync after days in the field: the login lasts, and remember-me outlives the session.
        PERMANENT_SESSION_LIFETIME=timedelta(days=60),
        REMEMBER_COOKIE_DURATION=timedelta(days=60),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        MAX_CONTENT_LENGTH=12 * 1024 * 1024,   # the largest body: one attachment
        MAX_JSON_BYTES=4 * 1024 * 1024,        # one sync batch
        MAX_FORM_MEMORY_SIZE=500_000,          # a form post's text fields (files apart): 413 past it
        MAX_BATCH_ITEMS=100,
        MAX_ATTACHMENT_BYTES=10 * 1024 * 1024,
        MAX_ROSTER_BYTES=5 * 1024 * 1024,
        # How many reverse proxies (nginx) to trust for X-Forwarded-For/-Proto; 0: none.
        PROXY_HOPS=proxy_hops(os.environ.get("JIEDUI_PROXY_HOPS")),
        # The address that proxy connects from; only its X-Forwarded-For is believed under `serve`.
        PROXY_ADDRESS=proxy_address(os.environ.get("JIEDUI_PROXY_ADDRESS")),
        SNAPSHOT_EVERY=float(os.environ.get("JIEDUI_SNAPSHOT_EVERY", "2")),
        # Memory for loaded villages (MB); clean, idle ones past it are dropped and reload on use.
        # Unset: a quarter of the machine's memory (store.default_memory_mb).
        MEMORY_MB=_memory_mb(os.environ.get("JIEDUI_MEMORY_MB")),
        JOURNAL_SNAPSHOT_BYTES=int(os.environ.get("JIEDUI_JOURNAL_SNAPSHOT_BYTES", str(16 << 20))),
        PV_YIELD_KWH_PER_KW=float(os.environ.get("JIEDUI_PV_YIELD", "1100")),
        # None: min(2, cores). Each worker is a long-lived WeasyPrint process (~150 MB).
        PRINT_WORKERS=int(os.environ["JIEDUI_PRINT_WORKERS"]) if os.environ.get("JIEDUI_PRINT_WORKERS") else None,
        # Single profiles waiting or rendering at once (None: 2 per worker); past it 503 + Retry-After.
        PRINT_QUEUE=int(_number("JIEDUI_PRINT_QUEUE", 0)) or None,
        PRINT_WAIT_SECONDS=120,  # a request waits this long for its profile, then 503 (it goes on)
        # Profiles rendered ahead once a household's data has been still PRINT_IDLE_SECONDS (not in
        # tests unless asked for); the store's change cursors are read every PRINT_POLL_SECONDS.
        PRINT_PRERENDER=os.environ.get("JIEDUI_PRINT_PRERENDER", "1") != "0" and not test_config.get("TESTING"),
        PRINT_IDLE_SECONDS=_number("JIEDUI_PRINT_IDLE_SECONDS", 90),
        PRINT_POLL_SECONDS=30.0,  # a changed village costs a scan of its records
        IMAGE_MAX_PIXELS=images.MAX_PIXELS,  # the pixel budget of a photo (core/images.py)
        # Costly requests at once, in all and per user (server/web/lanes.py); past them 503 busy.
        # Previews may also wait a little for a slot (a review page asks for all of its at once).
        EXPORT_LANE=int(_number("JIEDUI_EXPORT_LANE", 2)) or 2,
        EXPORT_LANE_PER_USER=int(_number("JIEDUI_EXPORT_LANE_PER_USER", 1)) or 1,
        PREVIEW_LANE=int(_number("JIEDUI_PREVIEW_LANE", 4)) or 4,
        PREVIEW_LANE_PER_USER=int(_number("JIEDUI_PREVIEW_LANE_PER_USER", 2)) or 2,
        PREVIEW_LANE_WAITING=6,
        PREVIEW_LANE_WAIT_SECONDS=10.0,
        # The address phones and QR codes use, e.g. https://jiedui.example.gov.cn behind a proxy.
        PUBLIC_BASE_URL=os.environ.get("JIEDUI_PUBLIC_URL") or None,
    )
    app.config.update(test_config)
