"""Errors in what a user gave the data side (a manifest that is missing, empty or holds nothing usable).

The ``gvr`` command prints them as one line naming the file and what to do (`gvr.cli.main`); code that calls
the data modules directly gets the exception.
"""


class DataError(ValueError):
    """The training or test data cannot be used as given; the message names the file and the fix."""


class MissingData(DataError, FileNotFoundError):
    """A data file or folder (manifest, pair cache, shards) does not exist."""
