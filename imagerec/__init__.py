"""imagerec: a self-hosted backend for a vision team's dataset → label → train → evaluate loop."""

__version__ = "0.1.0"
