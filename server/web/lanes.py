"""Bounded lanes for costly requests (exports, previews), as prints have theirs: at most `limit`
at once in all and `per_user` for any one user; past either the request answers 503 `busy` with
`Retry-After` at once, before any work. One cadre asking for twelve exports then holds one or two
request threads, never all of them, and everyone else's pushes keep being answered.

A lane slot is held for as long as the work runs, which for a streamed export is until its last
byte is sent (or the client goes): `stream(...)` releases it when the response is closed.
"""

import threading

from flask import current_app, stream_with_context

from server.core.problems import Problem

RETRY_AFTER = 5
DEFAULTS = {"export": (2, 1), "preview": (4, 2)}   # (in all, per user)


class Lane:
    def __init__(self, name, limit, per_user):
        self.name, self.limit, self.per_user = name, max(1, limit), max(1, per_user)
        self._lock = threading.Lock()
        self._inside = 0
        self._by_user = {}

    @property
    def inside(self):
        with self._lock:
            return self._inside

    def enter(self, user_id):
        """A slot for `user_id`, or Problem("busy"). Returns a release function, safe to call twice."""
        with self._lock:
            mine = self._by_user.get(user_id, 0)
            if self._inside >= self.limit or mine >= self.per_user:
                raise Problem("busy", retry_after=RETRY_AFTER,
                              extra={"retry_after": RETRY_AFTER, "lane": self.name})
            self._inside += 1
            self._by_user[user_id] = mine + 1
        released = []

        def release():
            with self._lock:
                if released:
                    return
                released.append(True)
                self._inside -= 1
                left = self._by_user.get(user_id, 1) - 1
                if left:
                    self._by_user[user_id] = left
                else:
                    self._by_user.pop(user_id, None)
        return release


def get(name, app=None):
    """The app's lane `name`, sized from JIEDUI_<NAME>_LANE and JIEDUI_<NAME>_LANE_PER_USER
    (config EXPORT_LANE, EXPORT_LANE_PER_USER, ...)."""
    app = app or current_app._get_current_object()
    lanes = app.extensions.setdefault("jiedui_lanes", {})
    lane = lanes.get(name)
    if lane is None:
        limit, per_user = DEFAULTS[name]
        key = name.upper() + "_LANE"
        lane = lanes.setdefault(name, Lane(name, int(app.config.get(key) or limit),
                                           int(app.config.get(key + "_PER_USER") or per_user)))
    return lane


def run(name, user_id, work):
    """`work()` inside the lane: its result, or 503 busy when the lane is full."""
    release = get(name).enter(user_id)
    try:
        return work()
    finally:
        release()


def stream(name, user_id, chunks):
    """A generator of response chunks that holds a slot of the lane until it is exhausted or
    closed. The slot is taken now (so a full lane answers 503 before the response starts); give
    the returned release to `response.call_on_close` too, for a response closed unread."""
    release = get(name).enter(user_id)

    def held():
        try:
            yield from chunks()
        finally:
            release()
    return stream_with_context(held()), release
