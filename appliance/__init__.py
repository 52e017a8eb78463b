"""Sitzungsbox: the offline session network for council meetings."""

__version__ = "0.1.0"
