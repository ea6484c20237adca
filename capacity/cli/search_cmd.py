"""Commands for this part (filled in by its owner)."""
