"""gvr: latent-cascaded generative video super-resolution (SimpleGVR)."""

__version__ = "0.1.0"
