"""The built-in study spaces (one TOML file per search space), registered as entry point
``snt_search.spaces: builtin`` so that installed copies find them like a plugin's spaces."""
