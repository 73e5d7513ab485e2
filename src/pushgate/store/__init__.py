"""Persistence: the store port and its one SQL adapter (SQLite and PostgreSQL)."""
