"""HTTP plumbing: server, request handler, routing, faults, recording, control API.

All Mixpanel hosts are served from one base URL, so routing is by path only.  The hot path is
kept lean (exact-match route dict, one ``write`` per small response, no per-request logging).
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import socketserver
import sys
import threading
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from . import changes, exported, groups, privacy, query_api
from . import data_management as dm
from . import endpoints as ep
from .faults import Fault, FaultSet
from .state import State

__all__ = ["SimulatorHandler", "SimulatorServer", "make_server"]

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

GENERIC_BODY_LIMIT = 64 * 1024 * 1024  # decoded body cap outside /import
HARD_BODY_LIMIT = 512 * 1024 * 1024  # never read more than this off the wire
RECORD_RAW_LIMIT = 64 * 1024  # bodies above this are summarised when recorded
RECORD_MAX_ITEMS = 100

# API families decide the error envelope.
QUERY, EXPORT, IMPORT, TRACK, ENGAGE_INGEST, APP, OTHER = (
    "query",
    "export",
    "import",
    "track",
    "engage_ingest",
    "app",
    "other",
)

# path -> (family, allowed methods, endpoint)
ROUTES: dict[str, tuple[str, tuple[str, ...], Any]] = {}
for _prefix in ("/api/query", "/api/2.0"):
    ROUTES[f"{_prefix}/engage"] = (QUERY, ("GET", "POST"), ep.engage_query)
    ROUTES[f"{_prefix}/events/top"] = (QUERY, ("GET", "POST"), ep.events_top)
    ROUTES[f"{_prefix}/export"] = (EXPORT, ("GET", "POST"), ep.export)
    for _path, _endpoint in query_api.ENDPOINTS.items():
        ROUTES[f"{_prefix}{_path}"] = (QUERY, ("GET", "POST"), _endpoint)
ROUTES["/export"] = (EXPORT, ("GET", "POST"), ep.export)
ROUTES["/import"] = (IMPORT, ("POST",), ep.import_events)
ROUTES["/track"] = (TRACK, ("GET", "POST"), ep.track)
ROUTES["/engage"] = (ENGAGE_INGEST, ("GET", "POST"), ep.engage_update)
ROUTES["/api/app/me"] = (APP, ("GET",), ep.app_me)
ROUTES.update(dm.query_routes(QUERY))
ROUTES["/groups"] = (ENGAGE_INGEST, ("GET", "POST"), groups.groups_update)
for _k in list(ROUTES):
    if _k != "/":
        ROUTES[_k + "/"] = ROUTES[_k]

_APP_ROUTES: list[tuple[re.Pattern, dict[str, Any]]] = [
    (
        re.compile(r"/api/app/organizations/(\d+)/service-accounts/add-to-project/?"),
        {"POST": ep.sa_add_to_project},
    ),
    (
        re.compile(r"/api/app/organizations/(\d+)/service-accounts/remove-from-project/?"),
        {"POST": ep.sa_remove_from_project},
    ),
    (
        re.compile(r"/api/app/organizations/(\d+)/service-accounts/?"),
        {"GET": ep.sa_list, "POST": ep.sa_create},
    ),
    (
        re.compile(r"/api/app/organizations/(\d+)/service-accounts/(\d+)/?"),
        {"GET": ep.sa_get, "DELETE": ep.sa_delete},
    ),
    (re.compile(r"/api/app/projects/(\d+)/service-accounts/?"), {"GET": ep.project_sa_list}),
    *privacy.routes(),
]

_RECORD_HEADERS = ("Authorization", "Content-Type", "Content-Encoding", "Accept-Encoding")


class _BodyTooLarge(Exception):
    pass


class _BadBody(Exception):
    pass


class _ClientGone(Exception):
    pass


def error_body(family: str, status: int, message: str, request: str) -> bytes:
    """Render an error in the envelope of the API family (reference sections 2, 5, 9)."""
    if family in (QUERY, EXPORT):
        obj: dict = {"request": request, "error": message}
    elif family == IMPORT or status in (413, 429) and family in (TRACK, ENGAGE_INGEST):
        obj = {"code": status, "error": message, "status": REASONS.get(status, "Error")}
    elif family == APP:
        obj = {"status": "error", "error": message}
    else:
        obj = {"error": message, "status": "error"}
    return ep.dumps(obj)


def rate_limit_message(family: str, state: State) -> str:
    if family in (QUERY, EXPORT):
        pid = state.settings["project_id"]
        rl = state.rate_limits
        return (
            f"Query rate limit exceeded for project_id: {pid}. "
            f"1/{rl['query_concurrent']} queries running concurrently and "
            f"{rl['query_per_hour'] + 1}/{rl['query_per_hour']} queries running in the last hour. "
            "For more information, please consult our documentation at "
            "https://help.mixpanel.com/hc/en-us/articles/"
            "115004602563-Rate-Limits-for-Export-API-Endpoints"
        )
    if family in (IMPORT, TRACK, ENGAGE_INGEST):
        return ep.INGEST_429
    return "Rate limit exceeded"


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], state: State | None = None, verbose: bool = False
    ) -> None:
        self.state = state or State()
        self.faults = FaultSet()
        self.verbose = verbose
        self.stopping = threading.Event()
        super().__init__(address, SimulatorHandler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's reverse-DNS lookup (getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> SimulatorServer:
    return SimulatorServer((host, port), **kwargs)


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MixpanelSimulator/1.0"
    disable_nagle_algorithm = True
    server: SimulatorServer
    _entry: list | None = None  # the recorded-request entry of the request being handled

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = ep.JSON,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        )
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        if self.close_connection:
            head += "Connection: close\r\n"
        # Recorded before the answer leaves, so a client that reads /__sim__/requests right
        # after its response always sees the status.
        entry = self._entry
        if entry is not None:
            entry[6] = status
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)
        if self.server.verbose:
            self.log_request(status, len(body))

    def _read_body(self, limit: int) -> bytes:
        headers = self.headers
        te = headers.get("Transfer-Encoding")
        if te and "chunked" in te.lower():
            raw = self._read_chunked()
        else:
            cl = headers.get("Content-Length")
            if not cl:
                return b""
            try:
                n = int(cl)
            except ValueError:
                self.close_connection = True
                raise _BadBody("invalid Content-Length") from None
            if n > HARD_BODY_LIMIT:
                self.close_connection = True
                raise _BodyTooLarge
            raw = self.rfile.read(n) if n else b""
            if len(raw) < n:
                self.close_connection = True
                raise _ClientGone
        ce = headers.get("Content-Encoding")
        if ce and ce.strip().lower() in ("gzip", "x-gzip", "deflate"):
            d = zlib.decompressobj(47)  # gzip or zlib, auto-detected
            try:
                out = d.decompress(raw, limit + 1)
            except zlib.error:
                raise _BadBody("unable to decompress gzip request body") from None
            if len(out) > limit:
                raise _BodyTooLarge
            return out
        if len(raw) > limit:
            raise _BodyTooLarge
        return raw

    def _read_chunked(self) -> bytes:
        parts = []
        total = 0
        rfile = self.rfile
        while True:
            line = rfile.readline(65537)
            if not line:
                self.close_connection = True
                raise _ClientGone
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _BadBody("invalid chunked encoding") from None
            if size == 0:
                while True:  # trailers
                    trailer = rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                return b"".join(parts)
            total += size
            if total > HARD_BODY_LIMIT:
                self.close_connection = True
                raise _BodyTooLarge
            chunk = rfile.read(size)
            rfile.readline(3)
            if len(chunk) < size:
                self.close_connection = True
                raise _ClientGone
            parts.append(chunk)

    # ----------------------------------------------------------------------------------------
    # dispatch
    # ----------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        raw_path = self.path
        if raw_path.startswith(("http://", "https://")):  # absolute-form (proxy style)
            slash = raw_path.find("/", raw_path.find("//") + 2)
            raw_path = raw_path[slash:] if slash >= 0 else "/"
        path, _, qs = raw_path.partition("?")
        method = self.command
        self._entry = None
        if path.startswith("/__sim__/"):
            self._control(method, path, qs)
            return
        server = self.server
        state = server.state
        route = ROUTES.get(path)
        if route is not None:
            family = route[0]
        elif path.startswith("/api/app/"):
            family = APP
        else:
            family = OTHER
        limit = (
            state.settings["import_max_bytes"]
            if family == IMPORT
            else max(GENERIC_BODY_LIMIT, state.settings["import_max_bytes"])
        )
        entry = None
        req = None
        try:
            try:
                body = self._read_body(limit)
            except _ClientGone:
                return
            except _BodyTooLarge:
                self._record(method, path, qs, b"", None)
                if family == IMPORT:
                    msg = f"request exceeds max limit of {limit} bytes"
                else:
                    msg = f"request body exceeds {limit} bytes"
                self._send(413, error_body(family, 413, msg, raw_path))
                return
            except _BadBody as exc:
                self._record(method, path, qs, b"", None)
                self._send(400, error_body(family, 400, str(exc), raw_path))
                return
            entry = self._record(method, path, qs, body, None)

            faults = server.faults
            if faults.items:
                latency, terminal = faults.take(method, path)
                if latency:
                    time.sleep(latency / 1000.0)
                if terminal is not None:
                    self._apply_fault(terminal, family, raw_path)
                    return

            query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
            req = ep.Request(method, path, raw_path, query, self.headers, body)
            try:
                data_route = dm.match(method, path) if route is None else None
                if data_route is not None:
                    result = data_route(server, req)
                elif route is not None:
                    if method not in route[1]:
                        raise ep.ApiError(405, f"method {method} not allowed on {path}")
                    result = route[2](server, req)
                elif family == APP:
                    result = self._app_route(method, path, req)
                else:
                    raise ep.ApiError(404, f"no such endpoint: {method} {path}")
            except ep.ApiError as exc:
                self._send(
                    exc.status,
                    error_body(family, exc.status, exc.message, raw_path),
                    headers=exc.headers,
                )
                return
            if isinstance(result, ep.ExportStream):
                self._stream_export(result)
            else:
                self._send(*result)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a simulator bug: answer 500 and say why on stderr
            traceback.print_exc()
            self.close_connection = True
            try:
                msg = f"internal simulator error: {sys.exc_info()[1]!r}"
                self._send(500, error_body(family, 500, msg, raw_path))
            except OSError:
                pass
        finally:
            if entry is not None and len(entry[7]) > RECORD_RAW_LIMIT:
                entry[8] = _summarise(req.parsed if req is not None else None, entry[7])
                entry[7] = b""

    def _app_route(self, method: str, path: str, req: ep.Request):
        for pattern, methods in _APP_ROUTES:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            fn = methods.get(method)
            if fn is None:
                raise ep.ApiError(405, f"method {method} not allowed on {path}")
            return fn(self.server, req, *(int(g) for g in m.groups()))
        raise ep.ApiError(404, f"no such endpoint: {method} {path}")

    # ----------------------------------------------------------------------------------------
    # recording
    # ----------------------------------------------------------------------------------------
    def _record(self, method: str, path: str, qs: str, body: bytes, parsed: Any) -> list:
        h = self.headers
        entry = [  # rendered lazily by _render_entry
            time.time(),
            method,
            path,
            qs,
            [(k, h.get(k)) for k in _RECORD_HEADERS],
            len(body),
            None,
            body,
            parsed,
        ]
        self.server.state.recorded.append(entry)
        self._entry = entry
        return entry

    # ----------------------------------------------------------------------------------------
    # faults
    # ----------------------------------------------------------------------------------------
    def _apply_fault(self, fault: Fault, family: str, raw_path: str) -> None:
        kind, p = fault.kind, fault.params
        if kind == "status":
            body = p["body"]
            data = body.encode() if isinstance(body, str) else ep.dumps(body)
            self._send(p["status"], data)
        elif kind == "rate_limit":
            headers = None
            if p["retry_after"] is not None:
                headers = [("Retry-After", str(p["retry_after"]))]
            msg = rate_limit_message(family, self.server.state)
            self._send(429, error_body(family, 429, msg, raw_path), headers=headers)
        elif kind == "malformed":
            self._send(p["status"], p["body"].encode("utf-8"), p["content_type"])
        elif kind == "truncate":
            partial = b'{"status":"ok","results":[{"$distinct_id":"trunc'
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(partial) + 4096}\r\n\r\n"
            )
            self.wfile.write(head.encode("latin-1") + partial)
            self._hard_close()
        elif kind == "drop":
            self._hard_close()
        elif kind == "hang":
            self._hang(p["seconds"])
            self._hard_close()

    def _hard_close(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hang(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        sock = self.connection
        stopping = self.server.stopping
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                readable, _, _ = select.select([sock], [], [], min(left, 0.25))
                if readable and not sock.recv(1, socket.MSG_PEEK):
                    return  # client went away
                if readable:
                    time.sleep(min(left, 0.25))
            except OSError:
                return

    # ----------------------------------------------------------------------------------------
    # export streaming
    # ----------------------------------------------------------------------------------------
    def _stream_export(self, stream: ep.ExportStream) -> None:
        try:
            self._write_export(stream)
        finally:
            if stream.on_close is not None:
                stream.on_close()

    def _write_export(self, stream: ep.ExportStream) -> None:
        accept = self.headers.get("Accept-Encoding") or ""
        use_gzip = "gzip" in accept.lower()
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        if self.request_version != "HTTP/1.0":
            head += "Transfer-Encoding: chunked\r\n"
        else:
            self.close_connection = True
        if use_gzip:
            head += "Content-Encoding: gzip\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        write = self.wfile.write
        if self._entry is not None:
            self._entry[6] = 200
        write(head.encode("latin-1") + b"\r\n")
        comp = zlib.compressobj(1, zlib.DEFLATED, 31) if use_gzip else None
        chunk_target = self.server.state.settings["export_chunk_bytes"] or 65536
        chunked = self.request_version != "HTTP/1.0"

        def frame(data: bytes) -> None:
            if chunked:
                write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                write(data)

        def emit(data: bytes) -> None:
            if comp is not None:
                data = comp.compress(data)
            if data:
                frame(data)

        faults = stream.faults
        terminate_after = faults.get("export_terminate_after", {}).get("lines")
        garble = faults.get("export_garble_line", {}).get("index")
        fail_after = faults.get("export_fail_after", {}).get("lines")
        buf: list[str] = []
        size = 0
        try:
            if not faults:
                for line in stream.lines:
                    buf.append(line)
                    size += len(line)
                    if size >= chunk_target:
                        emit("".join(buf).encode("utf-8"))
                        buf.clear()
                        size = 0
            else:
                for i, line in enumerate(stream.lines):
                    if terminate_after is not None and i >= terminate_after:
                        break
                    if fail_after is not None and i >= fail_after:
                        break
                    if garble is not None and i == garble:
                        line = line[: len(line) // 2] + "\n"
                    buf.append(line)
                    size += len(line)
                    if size >= chunk_target:
                        emit("".join(buf).encode("utf-8"))
                        buf.clear()
                        size = 0
                if fail_after is not None:
                    if buf:
                        emit("".join(buf).encode("utf-8"))
                        buf.clear()
                    if comp is not None:
                        tail = comp.flush(zlib.Z_SYNC_FLUSH)
                        if tail:
                            frame(tail)
                    self._hard_close()
                    return
                if terminate_after is not None:
                    buf.append("terminated early\n")
            if buf:
                emit("".join(buf).encode("utf-8"))
            if comp is not None:
                tail = comp.flush()
                if tail:
                    frame(tail)
            if chunked:
                write(b"0\r\n\r\n")
            else:
                self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    # ----------------------------------------------------------------------------------------
    # control API
    # ----------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, qs: str) -> None:
        server = self.server
        state = server.state
        try:
            body = self._read_body(GENERIC_BODY_LIMIT)
        except (_ClientGone, _BodyTooLarge, _BadBody):
            self.close_connection = True
            return
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            self._send(400, ep.dumps({"error": "control body must be JSON"}))
            return
        name = path[len("/__sim__/") :].rstrip("/")
        try:
            result = self._control_op(method, name, data, qs, state, server)
        except ValueError as exc:
            self._send(400, ep.dumps({"error": str(exc)}))
            return
        if result is None:
            self._send(404, ep.dumps({"error": f"no control endpoint {method} {path}"}))
            return
        self._send(200, ep.dumps(result))

    def _control_op(
        self, method: str, name: str, data: Any, qs: str, state: State, server: SimulatorServer
    ) -> Any:
        data_control = dm.control(method, name, data, state)
        if data_control is not None:
            return data_control
        if name == "health" and method == "GET":
            return {"status": "ok"}
        if name == "reset" and method == "POST":
            state.reset()
            changes.reset(state)
            server.faults.clear()
            return {"status": "ok"}
        if name == "config":
            if method == "GET":
                return state.config_view()
            if method == "POST":
                return state.configure(data)
        if name == "faults":
            if method == "GET":
                return server.faults.view()
            if method == "POST":
                return server.faults.add(data)
            if method == "DELETE":
                server.faults.clear()
                return {"status": "ok"}
        if name == "requests":
            if method == "GET":
                return [_render_entry(e) for e in list(state.recorded)]
            if method == "DELETE":
                state.recorded.clear()
                return {"status": "ok"}
        if name in ("imported", "tracked"):
            if method == "GET":
                if name == "imported":
                    events = state.added_events.events(exported.IMPORTED)
                    return {"count": state.imported_count, "events": events}
                with state.lock:
                    return {"count": state.tracked_count, "events": list(state.tracked)}
            if method == "DELETE":
                with state.lock:
                    if name == "imported":
                        state.added_events.clear(exported.IMPORTED)
                        state.imported_count = 0
                    else:
                        state.tracked.clear()
                        state.tracked_count = 0
                return {"status": "ok"}
        if name == "service-accounts" and method == "GET":
            return state.service_accounts_view()
        if name.startswith("profiles/") and method == "GET":
            did = unquote(name[len("profiles/") :])
            with state.profiles_lock:
                props = state.get_profile(did)
                return {
                    "$distinct_id": did,
                    "exists": props is not None,
                    "$properties": dict(props) if props is not None else None,
                }
        if name in ("clock", "profile-changes", "events"):
            return changes.control(method, name, data, state)
        if name == "stats" and method == "GET":
            with state.lock:
                return {
                    "imported": state.imported_count,
                    "tracked": state.tracked_count,
                    "engage_updates": state.engage_updates_count,
                    "recorded_requests": len(state.recorded),
                    "sessions": len(state.sessions),
                }
        return None


def _summarise(parsed: Any, body: bytes) -> dict:
    if isinstance(parsed, list):
        return {
            "truncated": True,
            "count": len(parsed),
            "items": parsed[:RECORD_MAX_ITEMS],
        }
    return {
        "truncated": True,
        "bytes": len(body),
        "text": body[:4096].decode("utf-8", "replace"),
    }


def _render_body(entry: list) -> tuple[Any, str]:
    """Decode a recorded body lazily (at GET /__sim__/requests time)."""
    if entry[8] is not None:
        return entry[8], "summary"
    body: bytes = entry[7]
    if not body:
        return None, "empty"
    ctype = (dict(entry[4]).get("Content-Type") or "").split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True)), "form"
    if ctype in ("application/x-ndjson", "application/ndjson"):
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
            return _cap(items), "ndjson"
        except ValueError:
            return text, "text"
    try:
        return _cap(json.loads(text)), "json"
    except ValueError:
        return text, "text"


def _cap(value: Any) -> Any:
    if isinstance(value, list) and len(value) > RECORD_MAX_ITEMS:
        return {"truncated": True, "count": len(value), "items": value[:RECORD_MAX_ITEMS]}
    return value


def _render_entry(entry: list) -> dict:
    qs = entry[3]
    query: dict[str, Any] = {}
    for k, v in parse_qsl(qs, keep_blank_values=True):
        if k in query:
            prev = query[k]
            query[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
        else:
            query[k] = v
    body, kind = _render_body(entry)
    return {
        "time": entry[0],
        "method": entry[1],
        "path": entry[2],
        "query_string": qs,
        "query": query,
        "headers": {k: v for k, v in entry[4] if v is not None},
        "status": entry[6],  # None when no response was sent (drop/hang faults)
        "body_size": entry[5],
        "body_kind": kind,
        "body": body,
    }
