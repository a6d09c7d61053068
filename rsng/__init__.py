"""rsng — Randomized Sparse Neural Galerkin schemes (Berman & Peherstorfer, NeurIPS 2023).

Importing ``rsng`` is cheap: it starts neither JAX nor Ray. The numerical core is ``rsng.core``.
"""

__version__ = "0.1.0"
