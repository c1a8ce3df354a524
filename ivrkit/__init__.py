"""ivrkit: phone menus (IVR) written as YAML, run as a transitions state machine on LiveKit."""

__version__ = "0.1.0"
