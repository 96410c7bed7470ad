"""Stage 4 entry point (filled in by the decode issue)."""
