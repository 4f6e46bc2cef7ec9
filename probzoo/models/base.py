"""What every zoo model shares: its hyper-parameters as a config, and the Fit class it returns."""

from __future__ import annotations

from typing import Any

from probzoo.infer.result import Fit

__all__ = ["ZooModel"]


class ZooModel:
    """Base class of the zoo's models.

    A subclass stores its constructor arguments in ``self._config`` (JSON-able values only) so that
    ``probzoo.load`` can rebuild it, and names the ``Fit`` subclass its ``fit`` returns.
    """

    fit_class: type[Fit] = Fit
    _config: dict[str, Any]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model."""
        return dict(self._config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"
