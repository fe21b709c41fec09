"""aestheticnet: image-aesthetics networks from architecture search to the phone."""

__version__ = "0.1.0"
