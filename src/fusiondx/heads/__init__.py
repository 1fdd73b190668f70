"""Task heads; importing this package registers them."""

from fusiondx.heads import classification  # noqa: F401
