"""``cloudglue-pipeline demo --webhooks``: after the demo's sync, a job completes in the emulator
and reaches the tables through its webhook event alone: registered webhook, receiver, event log,
the event sensor's run request, that run."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

from pipeline import settings
from pipeline.cli.api_options import ApiOptions, client_for
from pipeline.cli.span_runs import cli_resources, span_runner
from pipeline.emulator import EmulatorServer

# How long the demo waits for the emulator's delivery to be logged.
_DELIVERY_WAIT_SECONDS = 30.0


def show_webhooks(server: EmulatorServer, data_dir: Path, options: ApiOptions) -> bool:
    """Complete one pending job in the emulator and show its rows arrive; False on failure."""
    import dagster as dg

    import pipeline
    from pipeline.defs.webhook_sensor import webhook_events_sensor
    from pipeline.webhooks import EventLog, WebhookReceiver

    dataset = server.dataset
    pending = [j for j in dataset.job_ids() if dataset.status(j) == "pending"]
    if not pending:
        print("webhooks: the demo dataset has no pending job to complete")
        return False
    job_id = pending[0]
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(client_for(options))
        hook = client.create_webhook("http://127.0.0.1:1/", settings.WEBHOOK_EVENTS)
        receiver = stack.enter_context(WebhookReceiver(data_dir, hook["webhook_secret"], port=0))
        client.update_webhook(hook["id"], endpoint=receiver.url)
        print(
            f"\nWebhooks: webhook {hook['id']} delivers {', '.join(settings.WEBHOOK_EVENTS)} "
            f"to the receiver at {receiver.url}"
        )
        events = EventLog(data_dir)
        completed = time.monotonic()
        dataset.set_status(job_id, "completed")
        created = dt.datetime.fromtimestamp(dataset.summary(job_id)["created_at"] / 1000, dt.UTC)
        print(f"The emulator completed job {job_id} (created {created.date()})")
        while not events.read_new(None)[0]:
            if time.monotonic() - completed > _DELIVERY_WAIT_SECONDS:
                print("webhooks: no event was delivered")
                return False
            time.sleep(0.05)
        print(f"  its event was received and logged after {time.monotonic() - completed:.2f}s")
        resources = cli_resources(data_dir, options)
        tick = webhook_events_sensor()(dg.build_sensor_context(resources=resources))
        (request,) = tick.run_requests
        keys = request.partition_key_range
        print(f"  webhook_events_sensor requested a run of {keys.start}..{keys.end}")
        run = span_runner(stack, data_dir, options)
        result, _canceled = run(
            [dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)]
        )
        if not result.success:
            print("webhooks: the run failed")
            return False
        segments = pipeline.read_table("segment_entities", data_dir)
        rows = int((segments["job_id"] == job_id).sum())
        print(
            f"  run done after {time.monotonic() - completed:.1f}s in all: segment_entities "
            f"holds {rows} rows of job {job_id}, with no sync run by hand"
        )
    return True
