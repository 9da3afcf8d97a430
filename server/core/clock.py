"""The one clock. Stored times are ISO 8601 in UTC with an offset; every time a person reads (pages,
PDFs, exports) is shown in JIEDUI_TIMEZONE, and "today" and "this month" are that zone's calendar.

Tests may pin the clock with the app setting FIXED_NOW (an ISO time), so a case around midnight in
Asia/Shanghai can be built without waiting for one.
"""

import os
import re
import sys
from datetime import date, datetime, timedelta, timezone

DEFAULT_ZONE = "Asia/Shanghai"
# Date-times a phone may send: 2026-05-04T09:30:00+08:00, with optional fraction, Z or offset.
ISO_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?\Z")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def app_setting(name, default=None):
    """The running app's setting, or `default` outside an app (worker processes, benches)."""
    flask = sys.modules.get("flask")  # not imported here: worker processes run without Flask
    if flask is None:
        return default
    try:
        return flask.current_app.config.get(name, default)
    except RuntimeError:  # outside an app context (a worker process, a bench)
        return default


def zone():
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    name = app_setting("TIMEZONE") or os.environ.get("JIEDUI_TIMEZONE") or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def now():
    """Aware UTC now (or the pinned test time)."""
    fixed = app_setting("FIXED_NOW")
    if fixed:
        return parse_datetime(fixed).astimezone(timezone.utc)
    return datetime.now(timezone.utc)


def now_iso():
    return now().isoformat(timespec="seconds")


def today(at=None):
    """The calendar day in the deployment's zone, now or at the aware time `at`."""
    return (at or now()).astimezone(zone()).date()


def today_iso():
    return today().isoformat()


def month_start(day=None):
    day = day or today()
    return day.replace(day=1)


def week_start(day):
    """Monday of the week holding `day`."""
    return day - timedelta(days=day.weekday())


def parse_datetime(text):
    """An aware datetime from ISO text, or None. A time without offset is read in the local zone."""
    if not isinstance(text, str) or not ISO_DATETIME_RE.match(text):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone())
    return value


def parse_date(text):
    """A date from 'YYYY-MM-DD', or None."""
    if not isinstance(text, str) or not ISO_DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def sane_phone_time(text, *, slack_days=2, at=None):
    """A time a phone reports (created_at): ISO 8601, after 2000, and not days in the future
    (of `at`, default now: a push reads the clock once for all its items)."""
    value = parse_datetime(text)
    if value is None:
        return None
    if value < EARLIEST or value > (at or now()) + timedelta(days=slack_days):
        return None
    return value


def local_date(iso):
    """The local calendar day of a stored time (or a plain date) as 'YYYY-MM-DD'; '' if unreadable."""
    if isinstance(iso, str) and ISO_DATE_RE.match(iso):
        return iso
    value = parse_datetime(iso)
    return value.astimezone(zone()).date().isoformat() if value else ""


def show(iso, seconds=False):
    """A stored time as people read it: local date and minutes, no zone."""
    if isinstance(iso, str) and ISO_DATE_RE.match(iso):
        return iso
    value = parse_datetime(iso)
    if value is None:
        return "" if iso is None else str(iso)[:16]
    return value.astimezone(zone()).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
