"""How `flask --app server serve` runs the app under waitress: whose proxy headers to believe, which
request framing to refuse, and how many connections and threads, so that neither a guesser behind
nginx nor a slow or crafty client can stall or fool everyone else (issue 24)."""

import logging
import resource

import click
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import BaseWSGIServer, create_server
from werkzeug.middleware.proxy_fix import ProxyFix

# Only these are read from the proxy: the client's address and whether it came over https. Host comes
# from the Host header nginx passes on (X-Forwarded-Host is not set by our nginx, so a client could
# forge it through nginx; it is cleared).
TRUSTED_PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto"})
# Files kept free beyond one per connection: data files, the journal, print workers' pipes, logs.
FD_RESERVE = 256
DEFAULT_THREADS = 8
DEFAULT_CONNECTION_LIMIT = 1000
DEFAULT_CHANNEL_TIMEOUT = 60


class StrictFramingParser(HTTPRequestParser):
    """waitress serves a request with both Content-Length and Transfer-Encoding by the chunked body
    and keeps the connection, so a front end that read the Content-Length would disagree on where
    the next request starts (request smuggling). RFC 9112 §6.1 and §6.3: refuse such a request (400)
    and close the connection; likewise a Transfer-Encoding in HTTP/1.0, which waitress ignores."""

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            raise ParsingError("Content-Length and Transfer-Encoding together: ambiguous framing")
        if self.version == "1.0" and "TRANSFER_ENCODING" in self.headers:
            raise ParsingError("Transfer-Encoding in an HTTP/1.0 request: ambiguous framing")


class StrictFramingChannel(HTTPChannel):
    # A parse error becomes waitress's 400 with close_on_finish: the connection closes after it and
    # any request pipelined behind it is dropped unread.
    parser_class = StrictFramingParser


def fit_connection_limit(wanted):
    """Each connection holds a file descriptor: raise the soft limit towards what `wanted` needs
    (systemd's default soft limit is 1024), and stay under whatever limit we end up with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(10, min(wanted, soft - FD_RESERVE))


def waitress_settings(config, threads, connection_limit, channel_timeout):
    """waitress's adjustments for this app.

    Behind a proxy (PROXY_HOPS > 0) waitress itself takes the client address from X-Forwarded-For,
    the last PROXY_HOPS entries, and only on connections from the proxy's own address
    (PROXY_ADDRESS): a client that reaches the server directly can't name its own address, which
    werkzeug's ProxyFix (trusting the header from any peer) could not promise. With 0 hops, waitress
    clears every proxy header (its default), so the peer's address is the client's.

    Idle and slow connections cost waitress no thread (its I/O runs on one loop; a thread is taken
    only once a whole request has arrived), so the connection limit can be far above the threads:
    a thousand slow clients leave the threads free. poll() instead of select(): select can't watch a
    descriptor past 1024. channel_timeout closes a connection idle that long (a keep-alive nobody
    uses, a client that stopped sending mid-request), never one whose request is being answered."""
    settings = dict(
        threads=threads, connection_limit=fit_connection_limit(connection_limit),
        channel_timeout=channel_timeout, asyncore_use_poll=True, ident="jiedui",
        max_request_body_size=config["MAX_CONTENT_LENGTH"] + 4096,
        clear_untrusted_proxy_headers=True)
    hops = config.get("PROXY_HOPS", 0)
    if hops:
        settings.update(trusted_proxy=config["PROXY_ADDRESS"], trusted_proxy_count=hops,
                        trusted_proxy_headers=set(TRUSTED_PROXY_HEADERS))
    return settings


def without_proxy_fix(app):
    """Under waitress the proxy headers are read once, by waitress (above): the app's own ProxyFix,
    there for other WSGI servers and the test client, comes off rather than read them a second time."""
    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app = app.wsgi_app.app


def make_server(app, host, port, settings):
    """waitress's server for `app`, its channels parsing with StrictFramingParser."""
    without_proxy_fix(app)
    sockets = {}
    server = create_server(app, map=sockets, host=host, port=port, **settings)
    for dispatcher in list(sockets.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = StrictFramingChannel
    return server


def run(app, host, port, threads, connection_limit, channel_timeout):
    """Serve `app` until the process is stopped, saying first how it is set up."""
    settings = waitress_settings(app.config, threads, connection_limit, channel_timeout)
    server = make_server(app, host, port, settings)
    hops = app.config.get("PROXY_HOPS", 0)
    proxy = (f"{hops} proxy hop(s) trusted from {settings['trusted_proxy']}" if hops
             else "no proxy trusted 不信任代理头")
    click.echo(f"Jiedui serving on http://{host}:{port}  (数据 data: {app.config['DATA_DIR']}; "
               f"{threads} threads, ≤{settings['connection_limit']} connections, idle "
               f"{channel_timeout} s; {proxy})")
    logging.basicConfig()
    server.run()
