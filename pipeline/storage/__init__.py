"""Parquet layout, atomic partition writes, raw landing and read_table."""
