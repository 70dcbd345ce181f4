"""The error specglue raises when an operation fails for a reason the user can act on.

The CLI prints it (with :class:`~specglue.optional.MissingDependency`, ``FileNotFoundError`` and
``ValueError``, the errors of bad input) as one line; anything else is a bug and keeps its
traceback.
"""


class SpecglueError(RuntimeError):
    """An operation failed for a reason the message names (e.g. COLMAP registered too few
    images, no browser for a screenshot)."""
