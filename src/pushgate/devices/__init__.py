"""Registered authenticators and their registration."""
