"""The one Definitions object that Dagster loads (workspace.yaml points here)."""

import dagster as dg

from pipeline.defs.assets import cloudglue_days
from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.defs.schedules import previous_day_schedule
from pipeline.defs.sensors import completed_jobs_sensor
from pipeline.defs.webhook_sensor import webhook_events_sensor
from pipeline.settings import API_KEY_ENV

defs = dg.Definitions(
    assets=[cloudglue_days],
    # A run is one step (the multi-asset): run it in the run's own process rather than in a
    # second one the multiprocess executor would start (a Python start-up, ~3-5 s, per run).
    executor=dg.in_process_executor,
    jobs=[cloudglue_daily_job],
    schedules=[previous_day_schedule],
    sensors=[completed_jobs_sensor, webhook_events_sensor],
    resources={
        "cloudglue": CloudglueResource(api_key=dg.EnvVar(API_KEY_ENV)),
        "data_dir": DataDirResource(),
    },
)
