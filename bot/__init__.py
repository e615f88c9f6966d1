"""Daraja's composition root: settings, services, the outbox worker and the CLI."""

__version__ = "0.1.0"
