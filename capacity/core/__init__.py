"""Shared contracts and small helpers every layer may use (the bottom layer)."""
