"""The package version, importable from every layer (the package root imports them all)."""

__version__ = "0.2.0"
