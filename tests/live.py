"""A real server in a subprocess over a real data folder, and a small cookie-keeping HTTP client."""

import atexit
import http.client
import http.cookiejar
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_seeded = {}  # the local day -> a folder of seed_world built in this process


def seed(data_dir, demo=False):
    """Fill a data folder the way the project does: the tests' small world, or the demo (the real
    command, in a subprocess). The small world is built once per test process (and again should
    the local day turn, as seeding stamps today) and copied: seeding hashes four passwords at full
    strength, as a server would, and that was most of a live test's set-up."""
    if demo:
        env = dict(os.environ, JIEDUI_DATA_DIR=str(data_dir))
        subprocess.run([PYTHON, "-m", "flask", "--app", "server", "init", "--demo"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        return
    from server.core import clock
    day = clock.today_iso()
    if day not in _seeded:
        from server.records.layout import LAYOUT
        from server.store import Store
        from tests.conftest import seed_world
        folder = tempfile.mkdtemp(prefix="jiedui-seeded-")
        atexit.register(shutil.rmtree, folder, True)
        store = Store(folder, layout=LAYOUT, snapshot_every=0).open()
        try:
            seed_world(store)
        finally:
            store.close()
        _seeded[day] = folder
    shutil.copytree(_seeded[day], str(data_dir), dirs_exist_ok=True)


class LiveServer:
    def __init__(self, data_dir, port=None, extra_env=None, faults=False, app=None):
        """`faults`: the app of tests/fault_app.py (test-only fault switches), not the plain one;
        `app`: another test app module."""
        self.data_dir, self.port = str(data_dir), port or free_port()
        self.app = app or ("tests.fault_app" if faults else "server")
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, JIEDUI_DATA_DIR=self.data_dir, **(extra_env or {}))
        self.proc = None

    def start(self, timeout=30):
        self.log = open(os.path.join(self.data_dir, f"server-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "flask", "--app", self.app, "serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # ready when GET /api/v1/csrf answers (DESIGN)
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url + "/api/v1/csrf", timeout=1).read()
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def kill9(self):
        self.proc.send_signal(9)
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()


class Client:
    """Keeps cookies and the CSRF token, as the phone app does."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token = None

    def call(self, method, path, body=None, headers=None, timeout=30):
        data = None
        headers = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.token:
            headers["X-CSRFToken"] = self.token
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw and r.headers.get_content_type() == "application/json" else raw)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def login(self, username, password):
        self.token = self.call("GET", "/api/v1/csrf")[1]["csrf_token"]
        status, body = self.call("POST", "/login", {"username": username, "password": password,
                                                     "remember": True})
        if status == 200:
            self.token = body["csrf_token"]
        return status, body


def request(port, method, path, *, body=None, headers=None, source=None, tls=None, timeout=30):
    """One request on a connection of its own to 127.0.0.1:port, made from `source` (another
    loopback address, so that one machine can play several clients) and over TLS when `tls` is an
    ssl context. Returns (status, headers, raw body)."""
    source_address = (source, 0) if source else None
    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           source_address=source_address, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=source_address)
    headers = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def login_from(port, username, password, *, headers=None, source=None, tls=None):
    """A JSON login as the phone makes it (a CSRF token, then POST /login), on fresh connections with
    no device cookie. Returns (status, JSON body, or the raw body when it is not JSON)."""
    status, got, raw = request(port, "GET", "/api/v1/csrf", headers=headers, source=source, tls=tls)
    assert status == 200, (status, raw[:200])
    cookie = "; ".join(c.split(";", 1)[0] for c in got.get_all("Set-Cookie") or [])
    sent = dict(headers or {}, **{"X-CSRFToken": json.loads(raw)["csrf_token"], "Cookie": cookie})
    status, got, raw = request(port, "POST", "/login", headers=sent, source=source, tls=tls,
                               body={"username": username, "password": password, "remember": False})
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def exchange(sock, data, timeout=10):
    """Send raw bytes and read until the peer closes (or `timeout` passes with nothing more):
    (everything read, whether the peer closed)."""
    sock.settimeout(timeout)
    sock.sendall(data)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got, True
            got += chunk
    except TimeoutError:
        return got, False
    except OSError:  # reset, or a TLS connection cut without its close_notify: closed all the same
        return got, True


def fetch(client, path, timeout=120):
    """(status, headers, body) of a GET through a Client, whatever the status."""
    try:
        with client.opener.open(urllib.request.Request(client.base + path), timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@contextmanager
def server_behind_gate(data_dir, gate_dir, gate_env, extra_env=None):
    """A LiveServer of tests/fault_app.py whose gated work (`gate_env`: JIEDUI_TEST_PRINT_GATE or
    JIEDUI_TEST_EXPORT_GATE) reads a byte from a FIFO before it goes on: yields (server, writer),
    and `os.write(writer, b"x")` lets one through. The writer end is held open, so readers block
    in read(), not in open(); at the end every waiter is let go before the server stops."""
    gate = os.path.join(gate_dir, "gate")
    os.mkfifo(gate)
    writer = os.open(gate, os.O_RDWR)
    try:
        server = LiveServer(data_dir, faults=True, extra_env={gate_env: gate, **(extra_env or {})}).start()
        try:
            yield server, writer
        finally:
            os.write(writer, b"x" * 64)       # never leave a request thread stuck behind the gate
            server.stop()
    finally:
        os.close(writer)
