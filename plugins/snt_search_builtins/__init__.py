"""snt-search's built-in plugins.

Each plugin is one file and is registered in snt-search's ``pyproject.toml`` under the same
entry-point groups (``snt_search.<kind>s``) a third-party package uses; nothing here is imported
by the core except through those entry points.
"""
