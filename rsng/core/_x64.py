"""Imported by every core module that computes: JAX with float64 available.

Float64 is on request (``precision="f64"``) and used by the θ(0) fit and the ``gram`` least
squares; every array in the core has an explicit dtype, so float32 runs stay float32.
"""

import jax

jax.config.update("jax_enable_x64", True)
