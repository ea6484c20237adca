"""Shared contracts: the typed models every layer reads, the outcome vocabulary and small helpers (the bottom layer)."""
