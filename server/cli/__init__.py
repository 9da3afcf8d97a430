"""Command-line tools: a thin layer over the same owners and services the server uses, one module
per area, each a module-level click command or group (`flask --app server --help` lists them)."""


def init_app(app):
    from server.cli import data, devices, forms, printing, restore, roster, serve, users, villages
    for command in (data.init_command, users.user_group, roster.import_roster_command,
                    villages.village_group, printing.print_profiles_command, serve.serve_command,
                    data.backup_command, restore.restore_command, data.migrate_command,
                    forms.form_group, devices.device_token_command):
        app.cli.add_command(command)
