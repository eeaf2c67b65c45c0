"""Object stores on loopback for the cloud tests: moto's S3 server and a GCS emulator.

Both run in this process on 127.0.0.1 at a free port, started and stopped by session fixtures;
a server that cannot start fails the tests that need it. ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT``
is set before gcsfs is imported: otherwise every gcsfs call waits out a 60 s timeout.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

BUCKET = "tfrecord-io-test"


@dataclass(frozen=True)
class Bucket:
    """A bucket on a loopback server: its URL root and the storage options that reach it."""

    scheme: str
    endpoint: str
    storage_options: dict[str, Any]

    def url(self, *parts: str) -> str:
        """Return a fresh URL under the bucket: ``scheme://bucket/<unique>/parts...``."""
        return "/".join([f"{self.scheme}://{BUCKET}", uuid.uuid4().hex[:12], *parts])

    def filesystem(self) -> Any:
        """Return the fsspec filesystem of the bucket (a fresh listing cache)."""
        import fsspec

        fs = fsspec.filesystem(self.scheme, **self.storage_options)
        fs.invalidate_cache()
        return fs


def s3_options(endpoint: str) -> dict[str, Any]:
    """Storage options reaching moto at ``endpoint`` (any key is accepted without auth)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }


def start_moto() -> tuple[Any, str]:
    """Start moto's S3 server on a free loopback port; return it and its endpoint."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port
    return server, f"http://127.0.0.1:{port}"


def make_s3_bucket(endpoint: str) -> None:
    """Create the test bucket on moto."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)


def start_gcs() -> tuple[Any, str]:
    """Start gcp-storage-emulator (in memory, with the test bucket) on a free loopback port."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=BUCKET)
    server.start()
    port = server._api._httpd.server_address[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session", name="s3_bucket")
def s3_bucket_fixture() -> Iterator[Bucket]:
    """A bucket on moto's S3 server, for the session."""
    server, endpoint = start_moto()
    try:
        make_s3_bucket(endpoint)
        yield Bucket("s3", endpoint, s3_options(endpoint))
    finally:
        server.stop()


@pytest.fixture(scope="session", name="gcs_bucket")
def gcs_bucket_fixture() -> Iterator[Bucket]:
    """A bucket on the GCS emulator, for the session."""
    server, endpoint = start_gcs()
    try:
        yield Bucket("gs", endpoint, {"endpoint_url": endpoint, "token": "anon"})
    finally:
        server.stop()


@pytest.fixture(params=["s3", "gs"], name="bucket")
def bucket_fixture(request: pytest.FixtureRequest) -> Bucket:
    """Each loopback object store in turn."""
    name = "s3_bucket" if request.param == "s3" else "gcs_bucket"
    return request.getfixturevalue(name)
