"""The web layer: every blueprint. Views check access, parse, call owners or services, render."""
