"""The raw-stream baseline of ``bench.bulk_throughput``: Mixpanel's export served from files.

The simulator generates every export as it is asked for, in Python: a download from it measures
the simulator, not the wire. So the export is generated once (the simulator's own bytes, one
file per UTC day, the unit a bulk job asks for), gzipped once (level 1, as the simulator does),
and served from those files by this server, as an nginx would: no per-request work but parsing
the request line and a zero-copy ``sendfile`` of the file, with its ``Content-Length``.

    GET /api/2.0/export?from_date=D&to_date=D[&...]   -> the file of day D (404 if none)
                                                         gzipped when Accept-Encoding has gzip

Both sides of the benchmark read from here: the direct download (the same per-day requests, the
bytes to a file) and the platform's job (``MIXPANEL_DATA_BASE_URL``: only the export host is
pointed here; every other Mixpanel call still goes to the simulator).

    python -m bench.static_export DIRECTORY   (prints "listening on PORT", serves until killed)
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXPORT_PATH = "/api/2.0/export"


def day_file(directory: Path, day: str, *, gzipped: bool) -> Path:
    return directory / (f"{day}.ndjson.gz" if gzipped else f"{day}.ndjson")


def write_export_files(
    directory: Path, sim_port: int, auth: str, project_id, days: list[str]
) -> int:
    """Fetch each day's export from the simulator once (identity) and store it, plain and
    gzipped; returns the total number of bytes (plain)."""
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    conn = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=600)
    for day in days:
        query = urllib.parse.urlencode({"from_date": day, "to_date": day, "project_id": project_id})
        conn.request("GET", f"{EXPORT_PATH}?{query}", headers={"Authorization": auth})
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:200])
        day_file(directory, day, gzipped=False).write_bytes(data)
        day_file(directory, day, gzipped=True).write_bytes(gzip.compress(data, compresslevel=1))
        total += len(data)
    conn.close()
    return total


class ExportFileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the platform's pool and the client use it

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qs(query)
        day = params.get("from_date", [""])[0]
        gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        name = day_file(self.server.directory, day, gzipped=gzipped)
        if (
            path != EXPORT_PATH
            or params.get("to_date", [""])[0] != day
            or "/" in day
            or not name.is_file()
        ):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(name, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(size))
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(handle)

    def log_message(self, *args):
        pass


class ExportFileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path):
        super().__init__(("127.0.0.1", 0), ExportFileHandler)
        self.directory = directory
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StaticExportProcess:
    """The server in a process of its own (as an nginx would be), for a ``with`` block."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> StaticExportProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.static_export", str(self.directory)],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main():
    server = ExportFileServer(Path(sys.argv[1]))
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
