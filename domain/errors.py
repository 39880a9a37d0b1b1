"""Domain refusals: what cannot be applied is refused with a stable reason code.

The code is part of the public contract (it becomes the ``code`` of an RFC 9457
problem document), so codes are never renamed.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refuses the request. ``code`` is stable, ``detail`` human."""

    code = "domain_error"
    status = 422

    def __init__(self, detail: str, *, code: str | None = None, **context: object) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail
        self.context = context

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    def public_context(self) -> dict[str, object]:
        """The context fields a problem document shows: strings, integers, lists (e.g. ``missing``)
        and the structured evidence some refusals carry (``event_id_reused``'s ``original`` and
        ``new``); anything else stays internal."""
        def shown(v: object) -> object:
            if isinstance(v, (list, tuple)):
                return list(v)
            return str(v) if isinstance(v, int) and not -2**63 <= v < 2**63 else v  # JSON numbers stay 64-bit

        return {k: shown(v) for k, v in self.context.items()
                if isinstance(v, (str, int, dict)) or isinstance(v, (list, tuple))}  # dicts: e.g. event_id_reused's original/new


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class CalendarUnknown(DomainError):
    """A date outside every known working calendar: we never guess (never 500 either).

    Publish that year's schedule (PUT /api/v1/calendar/{year}) and resend the step.
    """

    code = "calendar_unknown"
    status = 422


def text_field(raw: object, what: str, limit: int, required: bool = True) -> str | None:
    """A free-text field: a non-empty string of at most ``limit`` characters, stripped (None when
    absent and not ``required``)."""
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{what} must be a non-empty string", code="missing_field" if raw is None else "invalid_field")
    if len(raw) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters", code="invalid_field")
    return raw.strip()
