"""`flask --app server serve [--host H] [--port P]`: waitress, threaded; ready when GET /api/v1/csrf
answers."""

import os
import signal

import click
from flask import current_app
from flask.cli import with_appcontext

from server.store import SchemaTooNew, StoreLocked, StoreUnavailable, close_app_store, get_store


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--threads", default=8, type=int)
@with_appcontext
def serve_command(host, port, threads):
    """Serve with waitress (threaded). Ready when GET /api/v1/csrf answers."""
    import waitress
    app = current_app._get_current_object()
    try:
        get_store(app)  # take the folder lock now, so a second server fails fast and clearly
    except (StoreLocked, StoreUnavailable, SchemaTooNew) as e:
        raise click.ClickException(str(e))

    def stop(signum, frame):
        close_app_store(app)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Jiedui serving on http://{host}:{port}  (数据 data: {app.config['DATA_DIR']})")
    waitress.serve(app, host=host, port=port, threads=threads, ident="jiedui",
                   max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 4096)
