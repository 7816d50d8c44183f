"""The defaults of `creator-match serve`'s bounds on a client's requests and connections (`ServiceConfig`).

Nothing here imports more than the standard library, so `creator-match --help` can read them at once.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_KEEP_ALIVE_SECONDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CAMPAIGNS",
    "DEFAULT_MAX_CONNECTIONS",
]

DEFAULT_MAX_BODY_BYTES = 1_000_000
# A bound on one request's work: 1,600 campaigns fit in a 1 MB body and took 73 s of CPU, slowing every other
# request meanwhile; a batch that large is `creator-match match`'s job.
DEFAULT_MAX_CAMPAIGNS = 100
# Open connections (and requests in progress) beyond which a request is answered 503 at once, rather than every
# client waiting behind whoever holds them.
DEFAULT_MAX_CONNECTIONS = 100
# How long an idle kept-alive connection is held open for the client's next request.
DEFAULT_KEEP_ALIVE_SECONDS = 5
