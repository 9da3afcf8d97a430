"""What counts as text: one rule for control characters, written once.

A roster cell, an old phone or a pasted form can carry C0 control characters and lone surrogates;
none is text a person wrote, one garbles a PDF's text layer, and XML (XLSX, XForms) cannot hold
them. Tab, newline and return are text in a multi-line answer or a comment, not in a name."""

import re

CONTROL_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # C0 but tab, newline and return; and DEL
SURROGATES = "\ud800-\udfff"

# An answer's text (its surrogates are checked apart, only for non-ASCII text: it is the hot path).
CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")
# A multi-line text: a household field, an address, a comment.
NOT_TEXT_RE = re.compile(f"[{CONTROL_CHARS}{SURROGATES}]")
# A name on one line: a village, a township.
NOT_ONE_LINE_RE = re.compile(f"[\t\n\r{CONTROL_CHARS}{SURROGATES}]")
# What an export or a PDF leaves out: what XML cannot hold, and DEL.
NOT_PRINTABLE_RE = re.compile(f"[{CONTROL_CHARS}{SURROGATES}\ufffe\uffff]")
