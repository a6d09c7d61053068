"""The numerical core: JAX, numpy, scipy, optax — never Ray, MLflow or pandas.

Importing this package (or :mod:`rsng.core.threads`, :mod:`rsng.core.config`,
:mod:`rsng.core.problems`) does not import JAX, so an entry point can size threads and choose the
platform first; the modules that compute import :mod:`rsng.core._x64`.
"""
