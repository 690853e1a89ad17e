"""What the run configurations of every model share: argument checks and per-model lists.

A configuration is a frozen dataclass. Fields named in its ``PER_MODEL`` may be a list, one
entry per model; the models are trained (or run) together and the dataset gets a ``model``
dimension with those fields as coordinates.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise unless ``value`` is an integer ≥ ``minimum``, naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} is not allowed; {name} must be an integer "
                        f"≥ {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value} is too small; {name} must be ≥ {minimum}")


def check_number(name: str, value: Any, allow_zero: bool = False) -> None:
    """Raise unless ``value`` is a finite number > 0 (≥ 0 with ``allow_zero``)."""
    allowed = "≥ 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}={value!r} is not allowed; {name} must be a finite number "
                        f"{allowed}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be finite and {allowed}")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise ValueError unless ``value`` is one of ``allowed``, naming the argument."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be one of "
                         f"{', '.join(repr(a) for a in allowed)}")


def op_name(op: Any) -> str:
    """The name a file records for an operation: a string itself, a task's ``op`` (a
    :class:`gk.tasks.Task`), else a callable's ``__name__``."""
    if isinstance(op, str):
        return op
    return getattr(op, "op", None) or getattr(op, "__name__", "custom")


class RunConfig:
    """Mixin for configuration dataclasses with per-model list fields."""

    PER_MODEL: ClassVar[tuple[str, ...]] = ()

    def _normalise_lists(self) -> int:
        """Turn list fields into tuples, check their lengths, and return the model count."""
        lengths = set()
        given = {}
        for name in self.PER_MODEL:
            value = getattr(self, name)
            if isinstance(value, (list, tuple, np.ndarray)):
                given[name] = value
                value = tuple(v.item() if hasattr(v, "item") else v for v in value)
                object.__setattr__(self, name, value)
                lengths.add(len(value))
                if not value:
                    raise ValueError(f"{name}={given[name]!r} is not allowed; a per-model list "
                                     "must hold at least one entry (one model per entry)")
        if len(lengths - {1}) > 1:
            listed = ", ".join(f"{n}={v!r} ({len(v)})" for n, v in given.items())
            raise ValueError(f"per-model lists of different lengths: {listed}; the lists of "
                             f"{', '.join(self.PER_MODEL)} must have one length (one model per "
                             "entry), or length 1")
        object.__setattr__(self, "_n_models", max(lengths | {1}))
        return self._n_models

    @property
    def n_models(self) -> int:
        """How many models the configuration describes (set when it is created)."""
        return self._n_models

    def per_model(self, name: str) -> list:
        """The value of a ``PER_MODEL`` field for each model."""
        value = getattr(self, name)
        if isinstance(value, tuple):
            return list(value) * (self.n_models if len(value) == 1 else 1)
        return [value] * self.n_models

    def to_json(self) -> dict:
        """The configuration as JSON-ready values."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "op" in values:
            values["op"] = op_name(values["op"])
        return json.loads(json.dumps(values))


def configure(cls: type, config: Any, options: dict[str, Any]) -> Any:
    """``config`` (an instance of ``cls`` or None) with ``options`` replacing its fields.

    Raises TypeError for a config of another type or an option that is not a field.
    """
    if config is not None and not isinstance(config, cls):
        raise TypeError(f"config={type(config).__name__}(...) is not allowed; config must be "
                        f"a {cls.__name__} or None")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        given = ", ".join(f"{name}={options[name]!r}" for name in unknown)
        raise TypeError(f"unknown option(s) {given}; allowed: {', '.join(known)}")
    return dataclasses.replace(config, **options) if config else cls(**options)
