"""The package version (a leaf module: the layers import it without importing the root)."""

__version__ = "0.1.0"
