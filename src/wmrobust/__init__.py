"""wmrobust: world-model robustness under latent representation error (arXiv 2501.00195)."""

__version__ = "0.1.0"
