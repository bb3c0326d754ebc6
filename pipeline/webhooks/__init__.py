"""Cloudglue webhooks: the events (``events``), their durable log in the data dir
(``event_log``) and the HTTP receiver that fills it (``receiver``). The Dagster sensor that
turns logged events into runs is ``pipeline.defs.webhook_sensor``."""

from pipeline.webhooks.event_log import EventLog
from pipeline.webhooks.events import NotAnEvent, WebhookEvent, parse_event
from pipeline.webhooks.receiver import WebhookReceiver

__all__ = ["EventLog", "NotAnEvent", "WebhookEvent", "WebhookReceiver", "parse_event"]
