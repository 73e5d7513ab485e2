"""Push delivery through the outbox: rows, payloads, retries (issue 8, seed 004)."""
