"""Example third-party plugins for snt-search (see docs/plugins.md in snt-search)."""
