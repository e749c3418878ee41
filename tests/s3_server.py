"""A real S3-compatible HTTP endpoint for the tests: moto in server mode, as a subprocess on a
free loopback port, with one bucket. The platform (in the test process, or in gunicorn and
worker processes through ``env``) talks to it over HTTP with boto3, as it would to a bucket.

Under CI a server that does not start fails the test; elsewhere it skips it (moto is a
development dependency)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.live_platform import free_port

# moto accepts any credentials; these are dummies, not secrets.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"the S3 test endpoint is unavailable under CI: {reason}")
    pytest.skip(reason)


class MotoS3Server:
    def __init__(self, bucket: str = "platform-results"):
        self.bucket = bucket
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> MotoS3Server:
        try:
            import boto3  # noqa: F401
            import moto.server  # noqa: F401
        except ImportError as exc:
            unavailable(f"moto[server] is not installed: {exc}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **DUMMY_CREDENTIALS},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=self.bucket)
                return self
            except Exception:  # noqa: BLE001 - not listening yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    unavailable("moto server did not start")
                time.sleep(0.1)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def env(self) -> dict[str, str]:
        """What selects this bucket for a platform process (README, "Where results live")."""
        return {
            "BULK_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": REGION,
            **DUMMY_CREDENTIALS,
        }

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
