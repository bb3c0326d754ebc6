"""Flattening complete Cloudglue jobs into keyed pandas frames (pure functions)."""
