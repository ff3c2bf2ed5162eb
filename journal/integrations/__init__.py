"""Adapters for chat frameworks; each imports its framework lazily and is an optional extra."""
