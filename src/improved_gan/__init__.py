"""improved-gan: Salimans et al. 2016, "Improved Techniques for Training GANs", in PyTorch.

The package follows the paper's pipeline; each layer imports only the layers below it (checked
by ``lint-imports``, see docs/architecture.md):

``cli`` > ``reproduce`` > ``evaluation`` | ``analysis`` > ``training`` > ``metrics`` > ``losses``
> ``models`` > ``techniques`` > ``data`` > ``utils`` > ``errors``.
"""

__version__ = "0.1.0"
