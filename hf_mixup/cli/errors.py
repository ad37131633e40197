"""Mistakes on the command line: reported in one line with exit status 2, never as a traceback."""

from __future__ import annotations


class UsageError(ValueError):
    """A problem with what the user asked for (an unknown model name, an empty table, a dataset that cannot
    be found), with a message that says what to change."""
