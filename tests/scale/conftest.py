"""Fixtures for the scale-out tests: a real S3-compatible server on loopback (moto's standalone server, which
s3fs's own tests use) and one local Ray instance, each started once per module because both are slow to start.

Datasets are benign images made by code (``tests/pipeline/scan_fixtures.py``), banks stand-ins built from them."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))  # scan_fixtures: the shared datasets

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 on a free loopback port; yields its endpoint URL. Nothing leaves the machine."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """s3fs pointed at the server through fsspec's own variables (inherited by subprocesses), a fresh bucket, and
    a private mirror (CLEANSET_CACHE) for this test; returns the bucket's URL."""
    import fsspec
    import s3fs

    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3_server)  # for subprocesses and Ray workers
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_server})  # this process read it at import
    monkeypatch.setenv("CLEANSET_CACHE", str(tmp_path / "cache"))
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"cleanset-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    fs.mkdir(bucket)
    return f"s3://{bucket}"


@pytest.fixture(scope="module")
def ray_up() -> Iterator[None]:
    """One local Ray instance (2 CPUs, no dashboard) for the module. Its workers inherit the environment it starts
    with, so the S3 server's stand-in credentials are set first (an instance another module started without them
    is replaced); endpoints and the bank store travel with each scan."""
    ray = pytest.importorskip("ray")
    from cleanset.cluster import ensure_ray

    with pytest.MonkeyPatch.context() as mp:
        for k, v in S3_ENV.items():
            mp.setenv(k, v)
        if ray.is_initialized():
            ray.shutdown()
        ensure_ray(num_cpus=2)
        try:
            yield
        finally:
            ray.shutdown()
