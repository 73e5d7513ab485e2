"""Push sessions: the one concept every face of pushgate is built on (DESIGN.md)."""
