"""The one Definitions object that Dagster loads (workspace.yaml points here)."""

import dagster as dg

defs = dg.Definitions()
