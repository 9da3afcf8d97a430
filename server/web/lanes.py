"""Bounded lanes for costly requests (exports, previews), as prints have theirs: at most `limit`
at once in all and `per_user` for any one user; past either the request answers 503 `busy` with
`Retry-After`, before any work. One cadre asking for twelve exports then holds one or two request
threads, never all of them, and everyone else's pushes keep being answered.

A lane may also let a few requests wait for a slot (`max_waiting`, for at most `wait` seconds):
a review page asks for all its photo previews at once, and each is quick to make, so they queue
briefly instead of showing broken images; past the waiting room, 503 at once.

A slot is held for as long as the work runs, which for a streamed export is until its last byte is
sent (or the client goes): `stream(...)` releases it when the response is closed.
"""

import threading

from flask import current_app, stream_with_context

from server.core.problems import Problem

RETRY_AFTER = 5
# name: (in all, per user, waiting at most, seconds a request may wait)
DEFAULTS = {"export": (2, 1, 0, 0.0), "preview": (4, 2, 6, 10.0)}


def _busy(name):
    return Problem("busy", retry_after=RETRY_AFTER, extra={"retry_after": RETRY_AFTER, "lane": name})


class Lane:
    def __init__(self, name, limit, per_user, max_waiting=0, wait=0.0):
        self.name, self.limit, self.per_user = name, max(1, limit), max(1, per_user)
        self.max_waiting, self.wait = max(0, max_waiting), max(0.0, wait)
        self._cond = threading.Condition()
        self._inside = 0
        self._waiting = 0
        self._by_user = {}

    @property
    def inside(self):
        with self._cond:
            return self._inside

    @property
    def waiting(self):
        with self._cond:
            return self._waiting

    def _fits(self, user_id):
        return self._inside < self.limit and self._by_user.get(user_id, 0) < self.per_user

    def enter(self, user_id):
        """A slot for `user_id` (waiting for one if the lane allows), or Problem("busy"). Returns a
        release function, safe to call twice."""
        with self._cond:
            if not self._fits(user_id):
                if self._waiting >= self.max_waiting or self.wait <= 0:
                    raise _busy(self.name)
                self._waiting += 1
                self._cond.notify_all()   # (tests wait for a waiter to be there)
                try:
                    if not self._cond.wait_for(lambda: self._fits(user_id), timeout=self.wait):
                        raise _busy(self.name)
                finally:
                    self._waiting -= 1
            self._inside += 1
            self._by_user[user_id] = self._by_user.get(user_id, 0) + 1
        released = []

        def release():
            with self._cond:
                if released:
                    return
                released.append(True)
                self._inside -= 1
                left = self._by_user.get(user_id, 1) - 1
                if left:
                    self._by_user[user_id] = left
                else:
                    self._by_user.pop(user_id, None)
                self._cond.notify_all()
        return release

    def wait_for_waiters(self, n, timeout):
        """Until `n` requests wait for a slot (True), or `timeout` seconds (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting >= n, timeout=timeout)


def get(name, app=None):
    """The app's lane `name`, sized by config <NAME>_LANE, <NAME>_LANE_PER_USER,
    <NAME>_LANE_WAITING and <NAME>_LANE_WAIT_SECONDS (env JIEDUI_EXPORT_LANE, ...)."""
    app = app or current_app._get_current_object()
    lanes = app.extensions.setdefault("jiedui_lanes", {})
    lane = lanes.get(name)
    if lane is None:
        limit, per_user, waiting, wait = DEFAULTS[name]
        key = name.upper() + "_LANE"
        config = app.config

        def setting(suffix, default):
            value = config.get(key + suffix)
            return default if value is None else value
        lane = lanes.setdefault(name, Lane(name, int(setting("", limit)), int(setting("_PER_USER", per_user)),
                                           int(setting("_WAITING", waiting)),
                                           float(setting("_WAIT_SECONDS", wait))))
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
