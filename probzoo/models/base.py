"""What every zoo model shares: its hyper-parameters as a config, and the Fit class it returns."""

from __future__ import annotations

import inspect
from typing import Any

from probzoo.infer.result import Fit

__all__ = ["ZooModel"]


class ZooModel:
    """Base class of the zoo's models.

    A subclass stores its constructor arguments in ``self._config`` (JSON-able values only) so that
    ``probzoo.load`` can rebuild it, and names the ``Fit`` subclass its ``fit`` returns.
    """

    fit_class: type[Fit] = Fit
    methods: tuple[str, ...] = ()
    _config: dict[str, Any]

    def check_fit(self, *data: Any, method: str, **options: Any) -> None:
        """Refuse, before anything is trained, a fit that would fail at its start: a method this model
        does not have, an option its ``fit`` does not take, or (in subclasses) a configuration the method
        cannot run on data of this shape. ``pz.compare`` and the CLI call it for every method first, so
        a bad last method does not cost the fits before it. Raises ValueError naming the argument."""
        if method not in self.methods:
            raise ValueError(f"method: unknown method {method!r} for {type(self).__name__}; "
                             f"valid methods: {', '.join(self.methods)}")
        params = inspect.signature(self.fit).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            taken = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty]
            for name in options:
                if name not in taken:
                    raise ValueError(f"{name}: not an option of {type(self).__name__}.fit "
                                     f"(it takes: {', '.join(taken)})")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model."""
        return dict(self._config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"
