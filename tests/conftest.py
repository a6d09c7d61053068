"""Test-session setup: threads sized before JAX loads, and a private cache folder."""

import os

from rsng.core.threads import configure_threads

configure_threads(1)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
