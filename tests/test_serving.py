"""Issue 24: the real server (`flask --app server serve`, waitress in a subprocess) sees the real client
behind a proxy, can't be fooled by a forged X-Forwarded-For, refuses ambiguous framing without
serving what was smuggled behind it, and keeps answering while many slow connections hang open."""

import re
import socket

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from server import create_app
from server.store import close_app_store
from server.web import serving
from server.web.security import proxy_address
from tests.conftest import PASSWORD
from tests.live import LiveServer, exchange, login_from, request, seed

PROXY = "127.0.0.2"  # the proxy's own address in these tests; the server listens on 127.0.0.1


def start(tmp_path, name, env):
    data = tmp_path / name
    seed(data)
    return LiveServer(data, extra_env=env).start()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """No proxy trusted: JIEDUI_PROXY_HOPS unset, as when clients reach the server directly."""
    server = start(tmp_path_factory.mktemp("plain"), "data", {"JIEDUI_PROXY_HOPS": ""})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """One proxy in front, connecting from PROXY."""
    server = start(tmp_path_factory.mktemp("proxied"), "data",
                   {"JIEDUI_PROXY_HOPS": "1", "JIEDUI_PROXY_ADDRESS": PROXY})
    yield server
    server.stop()


def is_throttled(status, body):
    return status == 429 and isinstance(body, dict) and body.get("retry_after")


def test_behind_the_proxy_one_guesser_does_not_lock_everyone_out(proxied):
    statuses = []
    for i in range(25):
        status, body = login_from(proxied.port, "cadre1", f"guess-{i}", source=PROXY,
                                  headers={"X-Forwarded-For": "203.0.113.5"})
        statuses.append(status)
    assert set(statuses) <= {401, 429} and 429 in statuses, statuses  # the guesser is slowed down
    status, body = login_from(proxied.port, "cadre1", PASSWORD, source=PROXY,
                              headers={"X-Forwarded-For": "198.51.100.7"})
    assert status == 200, body  # another client behind the same proxy is let in at once


def test_only_the_proxy_address_may_name_the_client(proxied):
    """A client that reaches the server directly (not from JIEDUI_PROXY_ADDRESS) with a new forged
    X-Forwarded-For each time is still one client, and is slowed down like one."""
    answers = [login_from(proxied.port, "super", f"guess-{i}", source="127.0.0.1",
                          headers={"X-Forwarded-For": f"198.18.{i}.1"}) for i in range(25)]
    assert any(is_throttled(*a) for a in answers), [a[0] for a in answers]


def test_without_proxy_hops_a_forged_x_forwarded_for_dodges_nothing(plain):
    answers = [login_from(plain.port, "cadre2", f"guess-{i}", headers={"X-Forwarded-For": f"203.0.113.{i}"})
               for i in range(25)]
    assert any(is_throttled(*a) for a in answers), [a[0] for a in answers]  # one client, not 25


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
AMBIGUOUS = [
    b"POST /api/v1/csrf HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED,
    b"POST /api/v1/csrf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED,
    b"POST /api/v1/csrf HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
]


def status_lines(raw):
    return re.findall(rb"^HTTP/1\.[01] (\d{3})", raw, re.M)


@pytest.mark.parametrize("raw", AMBIGUOUS, ids=["cl-te", "te-cl", "http10-te"])
def test_ambiguous_framing_is_refused_and_nothing_behind_it_is_served(plain, raw):
    with socket.create_connection(("127.0.0.1", plain.port), timeout=10) as sock:
        got, closed = exchange(sock, raw)
    assert status_lines(got) == [b"400"], got[:500]
    assert closed, "the connection must close after an ambiguous request"


def test_pipelined_requests_with_clear_framing_are_still_served(plain):
    raw = (b"POST /api/v1/csrf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
           b"GET /api/v1/csrf HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", plain.port), timeout=10) as sock:
        got, closed = exchange(sock, raw)
    assert len(status_lines(got)) == 2 and closed, got[:500]


def test_many_slow_connections_leave_the_server_answering(plain):
    """More idle or half-sent connections than threads (8), and than waitress's default connection
    limit (100): none takes a thread, and a request from someone else is still answered."""
    sockets = []
    try:
        for i in range(150):
            sock = socket.create_connection(("127.0.0.1", plain.port), timeout=10)
            sockets.append(sock)
            if i % 2:  # half of them start a request and never finish its head
                sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
        status, _, body = request(plain.port, "GET", "/api/v1/csrf", timeout=10)
        assert status == 200 and b"csrf_token" in body
    finally:
        for sock in sockets:
            sock.close()



def test_serve_trusts_the_proxy_only_as_configured():
    config = {"MAX_CONTENT_LENGTH": 1000, "PROXY_HOPS": 0, "PROXY_ADDRESS": "127.0.0.1"}
    direct = serving.waitress_settings(config, 8, 1000, 60)
    assert "trusted_proxy" not in direct and direct["clear_untrusted_proxy_headers"]
    two = serving.waitress_settings(dict(config, PROXY_HOPS=2, PROXY_ADDRESS="10.0.0.5"), 8, 1000, 60)
    assert (two["trusted_proxy"], two["trusted_proxy_count"]) == ("10.0.0.5", 2)
    assert two["trusted_proxy_headers"] == {"x-forwarded-for", "x-forwarded-proto"}  # not -host
    assert proxy_address(None) == "127.0.0.1" and proxy_address(" 0:0::1 ") == "::1"
    with pytest.raises(ValueError):
        proxy_address("nginx.local")


def test_under_serve_the_headers_are_read_once(tmp_path):
    """The app keeps ProxyFix for other WSGI servers; serve takes it off, waitress reads them."""
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True, "PROXY_HOPS": 1})
    try:
        assert isinstance(app.wsgi_app, ProxyFix)
        serving.without_proxy_fix(app)
        assert not isinstance(app.wsgi_app, ProxyFix)
    finally:
        close_app_store(app)
