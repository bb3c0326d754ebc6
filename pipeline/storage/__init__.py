"""Parquet layout, atomic partition writes, raw landing and read_table.

All file access of the pipeline lives in this package (so object storage can follow here only).
"""

from pipeline.storage.parquet import write_day
from pipeline.storage.read import read_arrow, read_table
from pipeline.storage.results import DayWriteResult, TableWriteResult

__all__ = ["DayWriteResult", "TableWriteResult", "read_arrow", "read_table", "write_day"]
