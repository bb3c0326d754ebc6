"""The asset job that sensors and schedules target: landing plus tables for a range of days."""

import dagster as dg

cloudglue_daily_job = dg.define_asset_job(
    "cloudglue_daily_job",
    selection=dg.AssetSelection.groups("cloudglue"),
    description="Land UTC days of Cloudglue extract jobs and rebuild their tables.",
)
