"""Per-day leases in a bucket: the lock of two runs that share nothing but the bucket.

A lease is the object ``.locks/<name>.lease`` holding its owner and expiry. It is taken with a
conditional create (``If-None-Match: *``); a lease past its expiry (its holder died) is taken over
with ``If-Match`` on the ETag read, so of two runs taking over the same lease one wins. The holder
renews every lease it holds each third of the time to live, again with ``If-Match``: a renewal
that fails means the lease was taken over, and every later commit under it raises. Commits check
the lease first (``assert_held``): a holder that stalled longer than the time to live stops
before writing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError

from pipeline import settings
from pipeline.storage.errors import LeaseLost

log = logging.getLogger(__name__)

# How long before its expiry a lease no longer covers a commit.
_MARGIN = 0.25
_WAIT_SECONDS = 0.25


class Leases:
    """The leases one process holds in one bucket, renewed by a background thread."""

    def __init__(self, store: Any, describe: Any, owner: str | None = None) -> None:
        self._store = store
        self._describe = describe
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._held: dict[str, str] = {}  # name -> ETag of our last write
        self._lost: set[str] = set()
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def key(name: str) -> str:
        return f".locks/{name}.lease"

    def _body(self) -> bytes:
        ttl = settings.lease_seconds()
        record = {"owner": self.owner, "expires_at": time.time() + ttl, "ttl": ttl}
        return json.dumps(record).encode()

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        self._acquire(name)
        try:
            yield
        finally:
            self._release(name)

    def _acquire(self, name: str) -> None:
        key = self.key(name)
        waited = False
        while True:
            try:
                etag = obstore.put(self._store, key, self._body(), mode="create")["e_tag"]
                break
            except AlreadyExistsError:
                pass
            try:
                current = obstore.get(self._store, key)
                data = bytes(current.bytes())
            except (NotFoundError, FileNotFoundError):
                continue  # released meanwhile
            try:
                body = json.loads(data)
            except ValueError:
                body = {}  # unreadable: as good as expired
            if body.get("expires_at", 0) < time.time():
                try:
                    etag = obstore.put(
                        self._store, key, self._body(), mode={"e_tag": current.meta["e_tag"]}
                    )["e_tag"]
                    log.info("took over the expired lease %s of %s", name, body.get("owner"))
                    break
                except (PreconditionError, NotFoundError, FileNotFoundError):
                    continue
            if not waited:
                log.info("waiting for %s, leased by %s", name, body.get("owner"))
                waited = True
            time.sleep(_WAIT_SECONDS)
        with self._mutex:
            self._held[name] = etag
            self._lost.discard(name)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, daemon=True, name="leases")
                self._thread.start()

    def _release(self, name: str) -> None:
        with self._mutex:
            etag = self._held.pop(name, None)
            lost = name in self._lost
            self._lost.discard(name)
        if etag is None or lost:
            return
        with contextlib.suppress(Exception):
            current = obstore.head(self._store, self.key(name))
            if current["e_tag"] == etag:
                obstore.delete(self._store, self.key(name))

    def _renew(self) -> None:
        while True:
            self._wake.wait(settings.lease_seconds() / 3)
            self._wake.clear()
            with self._mutex:
                held = dict(self._held)
            if not held:
                return
            for name, etag in held.items():
                try:
                    new = obstore.put(
                        self._store, self.key(name), self._body(), mode={"e_tag": etag}
                    )["e_tag"]
                except (PreconditionError, NotFoundError, FileNotFoundError):
                    log.error("lost the lease %s: it was taken over", name)
                    with self._mutex:
                        if name in self._held:
                            self._lost.add(name)
                    continue
                except Exception as exc:  # the bucket did not answer: try again next round
                    log.warning("could not renew the lease %s: %s", name, exc)
                    continue
                with self._mutex:
                    if name in self._held:
                        self._held[name] = new

    def assert_held(self, name: str) -> None:
        """Raise :class:`LeaseLost` unless this owner holds ``name`` for a while yet (read from
        the bucket: a build process checks the lease its parent holds)."""
        try:
            body = json.loads(bytes(obstore.get(self._store, self.key(name)).bytes()))
        except (NotFoundError, FileNotFoundError, ValueError):
            body = {}
        left = body.get("expires_at", 0) - time.time()
        if body.get("owner") != self.owner or left < _MARGIN * body.get("ttl", 0):
            raise LeaseLost(
                f"the lease on {name} in {self._describe()} is no longer ours (held by"
                f" {body.get('owner', 'nobody')}): this run stalled past the lease's time to live"
                " and stops without writing; run it again"
            )
