"""Typed errors of the try-on service and the one JSON shape every error response has.

Every error body is `{"error": <class name>, "message": <what to do>, "request_id": <id>}`. Library errors
(`MVVTONError` subclasses) map to 4xx with their class name; the service's own errors carry their status code.
"""

from __future__ import annotations

from http import HTTPStatus

from mvvton.errors import MVVTONError


class ServiceError(MVVTONError):
    """Base class of the service's errors; `status_code` is the HTTP status it is answered with."""

    status_code = 400


class JobNotFoundError(ServiceError, LookupError):
    """No job with this id (never submitted, or removed by the retention policy)."""

    status_code = 404


class JobStateError(ServiceError, RuntimeError):
    """The job is not in a state that allows the request (e.g. the result of a job that is still running)."""

    status_code = 409


class QueueFullError(ServiceError, RuntimeError):
    """The job queue is at its bound; retry after `retry_after` seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UploadTooLargeError(ServiceError, ValueError):
    """The request body is larger than the service's upload limit."""

    status_code = 413


class UnauthorizedError(ServiceError, PermissionError):
    """The request lacks the service's API key (or sends a wrong one)."""

    status_code = 401


class JobTimeoutError(ServiceError, TimeoutError):
    """`POST /v1/try-on` waited longer than its timeout; the job was cancelled."""

    status_code = 504


class QueueUnavailableError(ServiceError, ConnectionError):
    """The Redis job queue cannot be reached."""

    status_code = 503


class WorkerLostError(ServiceError, RuntimeError):
    """A job's worker process died (killed, out of memory, machine lost) on every attempt to run it."""

    status_code = 503


SERVER_SIDE_JOB_ERRORS = ("InternalError", WorkerLostError.__name__)  # a failed job with these is the server's fault


def status_code_for(error: BaseException) -> int:
    """HTTP status of an exception: its own for service errors, 422 for other library errors, else 500."""
    if isinstance(error, ServiceError):
        return error.status_code
    if isinstance(error, MVVTONError):
        return 422
    return 500


def status_error_name(status_code: int) -> str:
    """`404 -> "NotFound"`, `405 -> "MethodNotAllowed"`: the error name of a bare HTTP status."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return "HTTPError"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split())


def error_body(error: str, message: str, request_id: str | None) -> dict[str, str | None]:
    """The one JSON shape of every error response."""
    return {"error": error, "message": message, "request_id": request_id}
