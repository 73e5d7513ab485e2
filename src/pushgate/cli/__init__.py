"""The `pushgate` command line (click lives only in this package)."""
