"""Realms, users and relying-party API keys."""
