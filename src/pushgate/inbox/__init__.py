"""The message inbox (PowerAuth mobile token inbox; issue 8)."""
