"""simguard: SIM registration verification for telecom regulators."""

__version__ = "0.1.0"
