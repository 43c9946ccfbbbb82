"""Pilar: a social security registry and management information system."""

__version__ = "0.1.0"
