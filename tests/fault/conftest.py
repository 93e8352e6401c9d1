"""Hypothesis profiles for the fuzz suites: ``ci`` (default, modest) and ``long`` (``--hypothesis-profile=long``)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=50, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
if settings.get_current_profile_name() == "default":  # an explicit --hypothesis-profile wins
    settings.load_profile("ci")
