""":func:`serialize` / :func:`deserialize`: a schedule as ``{"class_name", "config"}`` and back,
for the schedules of this package only."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .._validation import show
from . import base, keras, pytorch, wrappers
from .base import LearningRateSchedule

#: every concrete schedule class the package defines, by name (a new class is registered by
#: being written in one of these modules)
_REGISTRY: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for module in (base, keras, pytorch, wrappers)
    for cls in vars(module).values()
    if isinstance(cls, type)
    and issubclass(cls, LearningRateSchedule)
    and cls.__module__ == module.__name__
    and not inspect.isabstract(cls)
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": name, "config": schedule.get_config()}`` (JSON-serializable).

    Raises ``TypeError`` for a plain Python callable (not serializable) or any other object,
    and for a subclass this module does not know (it could not be deserialized).
    """
    if isinstance(schedule, LearningRateSchedule):
        name = type(schedule).__name__
        if _REGISTRY.get(name) is not type(schedule):
            raise TypeError(
                f"{name} is not a schedule of optimlab.schedules and cannot be serialized; "
                f"known schedules: {', '.join(sorted(_REGISTRY))}"
            )
        return {"class_name": name, "config": schedule.get_config()}
    if callable(schedule):
        raise TypeError(
            f"{schedule!r} is a plain Python callable; plain callables are not serializable. "
            "Use a schedule from optimlab.schedules."
        )
    raise TypeError(
        f"serialize expects a LearningRateSchedule, got {schedule!r} of type "
        f"{type(schedule).__name__}"
    )


def deserialize(config: Mapping[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output (extra keys are ignored)."""
    if not isinstance(config, Mapping) or "class_name" not in config or "config" not in config:
        raise ValueError(
            f'expected a dict {{"class_name": ..., "config": {{...}}}}, got {config!r}'
        )
    name = config["class_name"]
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown schedule class_name {show(name)}; valid names: {', '.join(sorted(_REGISTRY))}"
        )
    try:
        return cls.from_config(config["config"])
    except RecursionError:  # a crafted config nesting LinearWarmups thousands deep
        raise ValueError(
            "the schedule config is nested too deeply to deserialize (LinearWarmup inside "
            "LinearWarmup inside ...); a schedule nests a few levels at most"
        ) from None
