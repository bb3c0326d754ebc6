"""Cloudglue HTTP client, models and errors (no Dagster)."""
