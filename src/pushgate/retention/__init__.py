"""Retention: old finished sessions, audit rows and settled outbox rows purged in bounded
batches by the background runtime (issue 10 "Keeping it healthy"; docs/AUDIT.md)."""
