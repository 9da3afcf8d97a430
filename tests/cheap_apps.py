"""The suite makes a Flask app per test, about a thousand a run, and each new app compiled the same
templates and the same URL rules again: about 60 ms of every test's set-up, the largest part of
it. Here each is compiled once per test process and shared by every app after it. Tests only: a
server makes one app, and this changes nothing an app does, only how often the same code is
compiled."""

import jinja2
from flask import Flask
from werkzeug.routing.rules import Rule


class SharedTemplateCode(jinja2.BytecodeCache):
    """Jinja's own cache of compiled templates, kept in memory for every app of the process. Its
    key holds the template's source checksum, so an edited template is compiled again."""

    def __init__(self):
        self.codes = {}

    def load_bytecode(self, bucket):
        code = self.codes.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self.codes[bucket.key] = bucket.bytecode_to_string()


def _shared_rule_builders():
    """Werkzeug generates and compiles a URL builder function for each rule of each app. The
    function is made from the rule's parsed parts, its defaults (folded in through their
    converters) and whether unknown arguments are appended; it takes the rule as an argument and
    closes over nothing. Rules alike in those get the same function, compiled once."""
    compile_builder = Rule._compile_builder
    builders = {}

    def shared(self, append_unknown=True):
        defaults = self.defaults or {}
        key = (tuple(self._trace), append_unknown,
               tuple(sorted((k, repr(v), type(self._converters.get(k)), repr(vars(self._converters[k]))
                             if k in self._converters else None) for k, v in defaults.items())))
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(self, append_unknown)
        return builder

    return shared


def install():
    Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedTemplateCode()}
    if hasattr(Rule, "_compile_builder"):  # else a werkzeug that builds otherwise: left as it is
        Rule._compile_builder = _shared_rule_builders()
