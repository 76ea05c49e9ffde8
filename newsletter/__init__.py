"""Les Jeudis de l'ODD 17: queue, pick, render and deliver Le RAMEAU's weekly flash-info."""

__version__ = "0.1.0"
