"""Loa: policy bulletins into radio programs for commune loudspeakers."""

__version__ = "0.1.0"
