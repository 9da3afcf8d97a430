"""The app with faults switched on, for tests that need a server to fail on purpose: built only by
`flask --app tests.fault_app ...` (tests/live.py's LiveServer(faults=True)); the server's own
modules hold no switch.

- POST /api/v1/_test/faults {"fail_before_store": n, "fail_after_store": m}: the next n pushes fail
  before anything is stored, the next m after their items are stored (the phone sees a failure for
  a push the server kept: it must resend without duplicates).
- JIEDUI_TEST_PRINT_GATE=FIFO: each single print admitted to the print lane reads one byte from the
  FIFO before rendering, so a test holds prints "slow" deterministically.
- JIEDUI_TEST_EXPORT_GATE=FIFO: likewise each submissions export, once inside the export lane
  (JIEDUI_TEST_EXPORT_ARRIVED=FIFO, optional, is told of each arrival), so a test knows which
  exports hold a slot without sleeping.
"""

import os
import threading

from flask import jsonify, request

import server.printing as printing
from server import create_app as create_server_app
from server.services import sheets
from server.core.problems import Problem
from server.web.errors import problem_response
from server.web.parse import json_body

PUSH = "sync.post_submissions"


def create_app(test_config=None):
    app = create_server_app(test_config)
    _install_push_faults(app)
    gate = os.environ.get("JIEDUI_TEST_PRINT_GATE")
    if gate:
        printing.print_household = _gated(printing.print_household, gate)
    gate = os.environ.get("JIEDUI_TEST_EXPORT_GATE")
    if gate:
        sheets.write_submissions = _gated(sheets.write_submissions, gate,
                                          os.environ.get("JIEDUI_TEST_EXPORT_ARRIVED"))
    return app


def _install_push_faults(app):
    faults = {"fail_before_store": 0, "fail_after_store": 0}
    lock = threading.Lock()

    def take(kind):
        with lock:
            if faults[kind] > 0:
                faults[kind] -= 1
                return True
        return False

    @app.before_request
    def fail_before_store():
        if request.endpoint == PUSH and take("fail_before_store"):
            raise Problem("test_fault")

    @app.after_request
    def fail_after_store(resp):
        if request.endpoint == PUSH and resp.status_code == 200 and take("fail_after_store"):
            body, status, headers = problem_response(Problem("test_fault"))
            resp = app.make_response((body, status, headers))
        return resp

    def set_faults():
        body = json_body()
        with lock:
            for k in faults:
                v = body.get(k)
                if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000:
                    faults[k] = v
            return jsonify(dict(faults))
    app.add_url_rule("/api/v1/_test/faults", "test_faults", set_faults, methods=["POST"])


def _gated(fn, gate, arrived=None):
    """`fn`, run only once a byte can be read from the FIFO `gate` (after writing one to `arrived`,
    when given, so the test knows a call is waiting)."""
    def held_at_the_gate(*args, **kwargs):
        if arrived:
            with open(arrived, "wb", buffering=0) as f:
                f.write(b"1")
        with open(gate, "rb", buffering=0) as f:
            f.read(1)
        return fn(*args, **kwargs)
    return held_at_the_gate
