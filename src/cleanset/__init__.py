"""cleanset: keep known abuse material out of image datasets, and prove it was checked."""

__version__ = "0.1.0"
