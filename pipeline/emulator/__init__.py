"""A local Cloudglue-compatible HTTP server with a deterministic synthetic dataset."""
