"""What a call compiles: every XLA compilation JAX records while it runs, and whether the persistent compilation
cache (which the test session turns on) served it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.monitoring

_COMPILED = "/jax/core/compile/backend_compile_duration"  # JAX's event for every program it compiles
_CACHE_HIT = "/jax/compilation_cache/cache_hits"          # recorded just before the compilation it serves


def compilations(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[tuple[str, bool]]]:
    """``call(*args, **kwargs)``'s value, and its compilations in order, each (program name, served by the persistent
    cache)."""
    events: list[str | None] = []

    def on_event(event: str, **kwargs: Any) -> None:
        if event == _CACHE_HIT:
            events.append(None)

    def on_duration(event: str, duration: float, **kwargs: Any) -> None:
        if event == _COMPILED:
            events.append(str(kwargs.get("fun_name", "")))

    jax.monitoring.register_event_listener(on_event)
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        value = call(*args, **kwargs)
    finally:
        jax.monitoring.unregister_event_listener(on_event)
        jax.monitoring.unregister_event_duration_listener(on_duration)
    return value, [(e, i > 0 and events[i - 1] is None) for i, e in enumerate(events) if e is not None]
