"""Shared test configuration: offline hub, deterministic hypothesis profile, small helpers."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("pndmkit", deadline=None, max_examples=60, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pndmkit")

# Two methods defined outside the package (tests/external_methods.py), registered as a user would: every
# registry-driven test then covers them with no other edit (see register_method).
import pndmkit  # noqa: E402
from external_methods import EXTERNAL  # noqa: E402

for _spec in EXTERNAL:
    if _spec.name not in pndmkit.METHODS:
        pndmkit.register_method(_spec)
