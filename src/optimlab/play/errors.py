"""The one error of the play API: a refused request, with the field it names.

Every refusal is a :class:`RequestError`; the server turns it into the JSON body
``{"error": {"field": "optimizers[0].hyperparameters.beta_1", "message": "beta_1 must be a
float in [0, 1), got 2.0"}}`` with status 400 (or ``status``). ``field`` is a path into the
request (keys joined by ``.``, list indices in brackets; ``"body"`` for the body itself).
"""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(ValueError):
    """A request the API refuses: ``field`` (path into the request), ``message`` (what is
    wrong, the value given and the valid range), ``status`` (HTTP, 400 by default) and, for a
    typed expression, ``position`` (0-based character offset of the fault, or None)."""

    def __init__(
        self, field: str, message: str, *, status: int = 400, position: int | None = None
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status
        self.position = position

    def to_json(self) -> dict:
        """The error as the JSON body the server sends."""
        error: dict = {"field": self.field, "message": self.message}
        if self.position is not None:
            error["position"] = self.position
        return {"error": error}
