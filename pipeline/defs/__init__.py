"""Dagster resources, partitions, assets, checks, sensors and schedules."""
