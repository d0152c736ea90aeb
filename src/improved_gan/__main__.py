"""``python -m improved_gan`` is the ``improved-gan`` command (also what ``torchrun -m`` runs)."""

from improved_gan.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
