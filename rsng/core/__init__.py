"""The numerical core: JAX, numpy, scipy, optax — never Ray, MLflow or pandas."""

import jax

jax.config.update("jax_enable_x64", True)  # float64 on request; every array in the core has an explicit dtype

