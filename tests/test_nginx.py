"""Issue 24: docs/deploy.md's nginx configuration, run by Debian's nginx in front of the real server
(waitress, JIEDUI_PROXY_HOPS=1), on loopback ports chosen at run time: the server sees each client's
own address, slow clients are held and ended by nginx, and ambiguous framing goes nowhere.

Every test connection comes from the loopback, so the tests connect from different loopback
addresses (127.0.0.2, 127.0.0.3, ...) to play different clients: nginx sees those, the server sees
only nginx at 127.0.0.1.

Needs nginx and openssl (Debian packages, in the Makefile's APT_TEST). Without them the nginx tests
skip with a message, except in CI (CI=true), where they fail."""

import functools
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from flask import Flask

from server import config
from server.web import serving
from tests.conftest import PASSWORD
from tests.live import LiveServer, exchange, free_port, login_from, request, seed

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy.md"
HEADER_TIMEOUT = 2  # the docs say 10 s; the test waits for it, so it shortens it
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
AMBIGUOUS = {
    "cl-te": b"POST /api/v1/csrf HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-cl": b"POST /api/v1/csrf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "http10-te": b"POST /api/v1/csrf HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
                 b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
}


def program(name):
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                       if os.access(p, os.X_OK)), None)


def docs_nginx_conf():
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/deploy.md holds exactly one nginx configuration"
    return blocks[0]


def docs_directive(conf, name):
    values = re.findall(rf"^\s*{name}\s+([^;]+);", conf, re.M)
    assert len(values) == 1, (name, values)
    return values[0].strip()


def size_in_bytes(text):
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit.lower()]


def adapted(conf, app_port, http_port, https_port, cert, key):
    """The docs' configuration on this run's ports and certificate. Each line changed must be there
    exactly once, so a change to the docs that this test no longer follows fails here, loudly."""
    for old, new in [("listen 80;", f"listen 127.0.0.1:{http_port};"), ("listen [::]:80;", ""),
                     ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
                     ("listen [::]:443 ssl http2;", ""),
                     ("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};"),
                     ("/etc/ssl/jiedui/fullchain.pem", str(cert)), ("/etc/ssl/jiedui/privkey.pem", str(key)),
                     ("client_header_timeout 10s;", f"client_header_timeout {HEADER_TIMEOUT}s;")]:
        assert conf.count(old) == 1, f"docs/deploy.md's nginx configuration no longer has {old!r}"
        conf = conf.replace(old, new)
    return conf


def main_conf(folder):
    """What Debian's /etc/nginx/nginx.conf gives the snippet, with every path inside `folder`."""
    user = "user root;" if os.geteuid() == 0 else ""  # as root, workers must write the temp folders
    mime = "include /etc/nginx/mime.types;" if os.path.exists("/etc/nginx/mime.types") else ""
    temp = " ".join(f"{kind}_temp_path {folder}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
    {temp}
    {mime}
    default_type application/octet-stream;
    gzip on;
    include {folder}/jiedui.conf;
}}
"""


@functools.cache
def tls(alpn=None):
    """A client context for the throwaway certificate (made once: loading the system's CAs is slow)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """The real server with JIEDUI_PROXY_HOPS=1, and nginx with the docs' configuration before it."""
    missing = [name for name in ("nginx", "openssl") if not program(name)]
    if missing:
        message = (f"{' and '.join(missing)} not installed: the nginx tests need Debian's packages "
                   f"(`make test-system-deps`, or apt-get install {' '.join(missing)})")
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("nginx")
    seed(folder / "data")
    server = LiveServer(folder / "data", extra_env={"JIEDUI_PROXY_HOPS": "1",
                                                    "JIEDUI_PROXY_ADDRESS": "127.0.0.1"}).start()
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([program("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    http_port, https_port = free_port(), free_port()
    (folder / "jiedui.conf").write_text(adapted(docs_nginx_conf(), server.port, http_port, https_port,
                                                cert, key))
    (folder / "nginx.conf").write_text(main_conf(folder))
    command = [program("nginx"), "-p", str(folder), "-c", str(folder / "nginx.conf"),
               "-e", str(folder / "error.log"), "-g", "daemon off;"]
    checked = subprocess.run(command + ["-t"], capture_output=True, text=True)
    if checked.returncode:
        server.stop()
        pytest.fail(f"nginx refuses docs/deploy.md's configuration:\n{checked.stderr}")
    nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:  # ready when the server answers through nginx
            assert nginx.poll() is None, (folder / "error.log").read_text()
            try:
                if request(https_port, "GET", "/api/v1/csrf", tls=tls(), timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.05)
        yield {"https": https_port, "http": http_port, "server": server, "folder": folder}
    finally:
        nginx.terminate()
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        server.stop()


def is_throttled_by_the_server(status, body):
    return status == 429 and isinstance(body, dict) and body.get("retry_after")


def test_nginx_speaks_tls_http2_and_gzip(front):
    with socket.create_connection(("127.0.0.1", front["https"]), timeout=10) as raw:
        with tls(("h2", "http/1.1")).wrap_socket(raw) as conn:
            assert conn.selected_alpn_protocol() == "h2"
    status, headers, _ = request(front["https"], "GET", "/app/css/site.css", tls=tls(),
                                 headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    status, headers, _ = request(front["http"], "GET", "/login")
    assert status == 301 and headers["Location"].startswith("https://")


def test_the_server_sees_each_client_as_nginx_saw_it(front):
    port = front["https"]
    guesses = [login_from(port, "cadre1", f"guess-{i}", source="127.0.0.2", tls=tls(),
                          headers={"X-Forwarded-For": f"198.18.0.{i}"})  # forged, a new one each time
               for i in range(25)]
    statuses = [status for status, _ in guesses]
    assert set(statuses) <= {401, 429}, statuses
    assert any(is_throttled_by_the_server(*g) for g in guesses), statuses  # one client, not 25
    status, body = login_from(port, "cadre1", PASSWORD, source="127.0.0.3", tls=tls())
    assert status == 200, body  # someone else behind nginx is let in at once

    # nginx's own limit on POST /login (30 at once per address, then one every 2 s) answers next.
    for _ in range(60):
        status, body = login_from(port, "cadre1", "guess-again", source="127.0.0.2", tls=tls())
        if status == 429 and isinstance(body, bytes):
            break
        assert status == 401 or is_throttled_by_the_server(status, body), (status, body)
    else:
        pytest.fail("nginx's limit_req on /login never answered")


def open_slow(port, source):
    """A TLS connection that has sent the start of a request head and no more."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    conn = tls().wrap_socket(raw)
    conn.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\n")
    return conn


def test_slow_clients_wait_at_nginx_and_are_ended_there(front):
    port = front["https"]
    slow = [open_slow(port, "127.0.0.4") for _ in range(40)]  # five times the server's threads
    try:
        for _ in range(3):
            status, _, body = request(port, "GET", "/api/v1/csrf", tls=tls(), timeout=10)
            assert status == 200 and b"csrf_token" in body
        # Trickling a header line now and then does not keep a connection: nginx ends each once its
        # head has taken client_header_timeout in all.
        open_ones, deadline = list(slow), time.monotonic() + HEADER_TIMEOUT + 15
        while open_ones and time.monotonic() < deadline:
            for conn in list(open_ones):
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    open_ones.remove(conn)
            readable, _, _ = select.select(open_ones, [], [], 0.2)
            for conn in readable:
                try:
                    if conn.recv(4096):
                        continue  # an answer (408); the close follows
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    pass
                open_ones.remove(conn)
        assert not open_ones, f"{len(open_ones)} slow connections still open"
        status, _, _ = request(port, "GET", "/api/v1/csrf", tls=tls(), timeout=10)
        assert status == 200
    finally:
        for conn in slow:
            conn.close()


@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ambiguous_framing_is_refused_at_nginx(front, name):
    with socket.create_connection(("127.0.0.1", front["https"]), timeout=10) as raw:
        with tls().wrap_socket(raw) as conn:
            got, closed = exchange(conn, AMBIGUOUS[name])
    assert re.findall(rb"^HTTP/1\.[01] (\d{3})", got, re.M) == [b"400"], got[:300]
    assert closed, "nginx keeps the connection after an ambiguous request"


def test_the_docs_limits_fit_the_server(tmp_path):
    """nginx lets through every body the server accepts (its own 413 says why in the phone's words)
    and not much more; timeouts, the login limit and the proxy headers are all there."""
    conf = docs_nginx_conf()
    app = Flask("probe")
    config.configure(app, {"DATA_DIR": str(tmp_path / "data")})
    settings = serving.waitress_settings(app.config, 1, 100, 60)
    largest = settings["max_request_body_size"]  # what `serve` lets waitress read
    assert largest > app.config["MAX_CONTENT_LENGTH"]
    limit = size_in_bytes(docs_directive(conf, "client_max_body_size"))
    assert largest <= limit <= 2 * largest
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert re.fullmatch(r"\d+s", docs_directive(conf, name))
    assert re.search(r"location = /login \{\s*limit_req zone=jiedui_login", conf)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf


def test_the_docs_name_only_settings_the_server_reads():
    text = DEPLOY.read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "server").rglob("*.py"))
    named = set(re.findall(r"JIEDUI_[A-Z_]+", text))
    assert named and {n for n in named if n not in source} == set()
    assert "ExecStart=/opt/jiedui/.venv/bin/flask --app server serve --host 127.0.0.1 --port 5000" in text
    assert "Environment=JIEDUI_PROXY_HOPS=1" in text
