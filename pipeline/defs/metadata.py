"""The metadata keys the assets write and the CLI reads back from a run's events, once."""

PATH = "path"

# The raw landing's materialization of a day.
JOBS_LISTED = "jobs_listed"
JOBS_BY_STATUS = "jobs_by_status"
JOBS_FETCHED = "jobs_fetched"
JOBS_ALREADY_LANDED = "jobs_already_landed"
JOBS_SKIPPED = "jobs_skipped"
SKIPPED_JOBS = "skipped_jobs"
JOBS_PRUNED = "jobs_pruned"
REQUESTS = "requests"
UNCHANGED = "unchanged"
SECONDS = "seconds"

# A table's materialization of a day (the first two are Dagster's own).
ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
JOBS = "jobs"
FILES = "files"
PREVIEW = "preview"

# A ranged run's failure: the days that failed and why.
FAILED_DAYS = "failed_days"
