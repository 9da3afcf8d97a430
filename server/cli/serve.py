"""`flask --app server serve [--host H] [--port P] [--threads N] [--connection-limit N]
[--channel-timeout S]`: waitress, threaded (set up in web/serving.py); ready when GET /api/v1/csrf
answers."""

import os
import signal

import click
from flask import current_app
from flask.cli import with_appcontext

from server.store import SchemaTooNew, StoreLocked, StoreUnavailable, close_app_store, get_store
from server.web import serving


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--threads", envvar="JIEDUI_THREADS", type=click.IntRange(1, 64),
              default=serving.DEFAULT_THREADS, show_default=True,
              help="Request threads (JIEDUI_THREADS); slow or idle connections take none.")
@click.option("--connection-limit", envvar="JIEDUI_CONNECTION_LIMIT", type=click.IntRange(10, 100000),
              default=serving.DEFAULT_CONNECTION_LIMIT, show_default=True,
              help="Open connections at most (JIEDUI_CONNECTION_LIMIT).")
@click.option("--channel-timeout", envvar="JIEDUI_CHANNEL_TIMEOUT", type=click.IntRange(5, 3600),
              default=serving.DEFAULT_CHANNEL_TIMEOUT, show_default=True,
              help="Seconds an idle connection is kept (JIEDUI_CHANNEL_TIMEOUT).")
@with_appcontext
def serve_command(host, port, threads, connection_limit, channel_timeout):
    """Serve with waitress (threaded). Ready when GET /api/v1/csrf answers."""
    app = current_app._get_current_object()
    try:
        get_store(app)  # take the folder lock now, so a second server fails fast and clearly
    except (StoreLocked, StoreUnavailable, SchemaTooNew) as e:
        raise click.ClickException(str(e))
    from server.services import housekeeping
    housekeeping.start(app.config)  # what killed exports and backups left; our own temp folder

    def stop(signum, frame):
        close_app_store(app)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serving.run(app, host, port, threads, connection_limit, channel_timeout)
