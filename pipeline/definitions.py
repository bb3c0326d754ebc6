"""The code location's definitions, made when Dagster loads it (workspace.yaml, ``[tool.dg]`` and
the image's code server name this module): settings such as CLOUDGLUE_START_DATE,
CLOUDGLUE_DAYS_PER_RUN, CLOUDGLUE_WEBHOOKS and CLOUDGLUE_WEBHOOK_SENSOR_SECONDS are read then,
not when a module is imported."""

import dagster as dg

from pipeline.defs.assets import days_asset
from pipeline.defs.jobs import cloudglue_daily_job
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.resources import CloudglueResource, DataDirResource
from pipeline.defs.schedules import previous_day_schedule
from pipeline.defs.sensors import completed_jobs_sensor
from pipeline.defs.webhook_sensor import webhook_events_sensor
from pipeline.settings import API_KEY_ENV


@dg.definitions
def defs() -> dg.Definitions:
    partitions = daily_partitions()
    return dg.Definitions(
        assets=[days_asset(partitions_def=partitions)],
        # A run is one step (the multi-asset): run it in the run's own process rather than in a
        # second one the multiprocess executor would start (a Python start-up per run).
        executor=dg.in_process_executor,
        jobs=[cloudglue_daily_job],
        schedules=[previous_day_schedule],
        sensors=[completed_jobs_sensor(), webhook_events_sensor(partitions)],
        resources={
            "cloudglue": CloudglueResource(api_key=dg.EnvVar(API_KEY_ENV)),
            "data_dir": DataDirResource(),
        },
    )
