"""Sealing-key rotation: every sealed secret re-encrypted under a new key in small batches
while the servers run (issue 10 "Keeping it healthy"; docs/KEYS.md)."""
