"""The errors the Kiji model raises for a client's mistakes, knowing nothing of HTTP.

Parameter parsing (`params`, `query`), reading (`reader`) and writing (`writer`) raise a `Problem`
that names *where* the mistake is (a parameter such as `limit`, or a body path such as
`[0].cells.info.name[1].value`) and *what* was wrong. Only the HTTP layer (`errors.py`, its
middleware and the stream's error tail) turns one into an answer: the status and KijiREST's
`exceptionName` travel with the error so that the mapping lives in one place and the model stays
usable outside aiohttp (the demo loader, the bench, tests).
"""

from __future__ import annotations


class Problem(Exception):
    """A client-visible mistake: where it is, what was wrong, and the answer it calls for."""

    status = 400
    exception_name = "KijiRESTException"
    #: headers the answer carries (e.g. Retry-After; a 401's WWW-Authenticate lines as pairs)
    headers: dict[str, str] | list[tuple[str, str]] | None = None

    def __init__(self, where: str | None, what: str, *, status: int | None = None) -> None:
        self.where = where
        self.what = what
        if status is not None:
            self.status = status
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class BadInput(Problem):
    """A parameter or body that cannot be served as given (400)."""

    status = 400
    exception_name = "IllegalArgumentException"


class NotFound(Problem):
    """An instance or table the gateway does not serve (404)."""

    status = 404
    exception_name = "WebApplicationException"


class UnsupportedMediaType(Problem):
    """A body of a type the resource does not take (415)."""

    status = 415
    exception_name = "WebApplicationException"


class TooLarge(Problem):
    """A request larger than a configured bound (413): nothing of it was done."""

    status = 413
    exception_name = "WebApplicationException"


class RequestTimeout(Problem):
    """A request body that stopped arriving (408)."""

    status = 408
    exception_name = "WebApplicationException"


class ExpectationFailed(Problem):
    """An `Expect` header other than 100-continue (417)."""

    status = 417
    exception_name = "WebApplicationException"


class Busy(Problem):
    """The gateway is at a configured bound of work in flight (503); try again after
    `retry_after` seconds, which the answer's `Retry-After` header says."""

    status = 503
    exception_name = "WebApplicationException"

    def __init__(self, where: str | None, what: str, *, retry_after: int) -> None:
        super().__init__(where, what)
        self.headers = {"Retry-After": str(retry_after)}


class Unauthorized(Problem):
    """Missing, malformed, unknown, revoked or expired credentials (401). `challenges` are the
    `WWW-Authenticate` values the answer carries (the schemes the gateway takes); the detail says
    what was wrong with the credential and never holds any part of it."""

    status = 401
    exception_name = "WebApplicationException"

    def __init__(self, what: str, challenges: tuple[str, ...] = ('Bearer realm="kijirest"',)) -> None:
        super().__init__("authorization", what)
        self.challenges = challenges
        # one header line per scheme (RFC 9110 §11.6.1), so pairs rather than a dict
        self.headers = [("WWW-Authenticate", c) for c in challenges]


class Forbidden(Problem):
    """Credentials that are valid but do not allow this (403): a write with a read grant, a row
    outside a row-prefix grant."""

    status = 403
    exception_name = "WebApplicationException"


class Unavailable(Problem):
    """Something the answer needs is out of reach for now (503), e.g. the identity provider's keys."""

    status = 503
    exception_name = "WebApplicationException"
