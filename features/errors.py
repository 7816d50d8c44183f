"""The one base of the errors by which the library refuses a request or cannot work, for an app to catch.

Here, below every package, because `features` imports neither `training` nor `matcher` and `training` does not
import `matcher`: each error keeps its own module and bases, and gains this one.
"""

from __future__ import annotations

__all__ = ["MatcherError"]


class MatcherError(Exception):
    """The matcher refused a request or cannot work: a model, an index, a registry, a seed or a campaign it cannot
    use. The message names what and why; each subclass keeps its other bases (`UnknownCreator` is a ValueError)."""
