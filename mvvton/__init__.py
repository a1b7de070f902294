"""mvvton: multi-view virtual try-on (MV-VTON) on diffusers."""

__version__ = "0.1.0"
