"""Jiedui: field survey server for village-resident cadres. `create_app` builds the Flask app."""

import logging

from flask import Flask

from server import config


def create_app(test_config=None):
    """Nothing opens the store here: CLI commands that write must take the folder lock themselves,
    and read-only ones must work beside a running server. The store opens on first use."""
    app = Flask(__name__, static_folder=None)
    config.configure(app, test_config)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from server.web import (admin, auth, device_api, errors, households as household_views, openrosa,
                            phone_app as phone, printing, review, security, sync_api as sync)
    from server import cli, store as stores
    from server.forms import formdefs
    from server.web import language as i18n
    from server.web import dashboard, figures, ledger as ledger_views
    from server.forms import labels
    from server.services import shared_forms
    from server.records.layout import LAYOUT
    stores.init_app(app, LAYOUT)  # the records layer says where its records live; the store names none
    formdefs.init_app(app)
    shared_forms.init_app(app)
    i18n.init_app(app)
    labels.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    for module in (auth, phone, household_views, admin, sync, device_api, openrosa, printing, review,
                   dashboard, ledger_views, figures):
        app.register_blueprint(module.bp)
    cli.init_app(app)
    return app
