"""The package's version, in a module of its own: library modules read it without importing the package's
``__init__`` (which imports them in turn)."""

__version__ = "0.1.0"
