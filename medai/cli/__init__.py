"""The ``medai`` command line."""
