"""The root of the tree: :class:`MultipathBrickError`."""

from __future__ import annotations

from os_brick import exception as brick_exception

__all__ = ["MultipathBrickError"]


class MultipathBrickError(brick_exception.BrickException):  # type: ignore[misc]
    """Root of every error this library raises."""

    def __init__(self, message: str, *fields: object) -> None:
        super().__init__(message)
        self.msg: str = message
        self.args = fields

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[type[MultipathBrickError], tuple[object, ...]]:
        return (type(self), self.args)
