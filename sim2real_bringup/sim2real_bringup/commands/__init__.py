"""Subcommands of the ``sim2real`` command line, one module each."""
