"""improved-gan: Salimans et al. 2016, "Improved Techniques for Training GANs", in PyTorch.

The package follows the paper's pipeline, one way:
``data`` -> ``models`` -> ``techniques`` / ``losses`` -> ``training`` -> ``metrics`` -> ``cli``.
"""

__version__ = "0.1.0"
