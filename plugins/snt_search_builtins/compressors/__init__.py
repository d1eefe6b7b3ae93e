"""Built-in snt-search plugins, registered through entry points like any third party."""
