"""Operator command line: ``remotesign --help``."""
