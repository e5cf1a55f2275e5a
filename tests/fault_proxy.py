"""A fault-injecting HTTP proxy in front of an AWS emulator (moto never throttles).

Point ``AWS_ENDPOINT_URL`` at the proxy; on a chosen share of calls it answers for the
emulator with what real AWS sometimes answers: throttling
(``ProvisionedThroughputExceededException``, S3 ``SlowDown``), 5xx errors, connection
resets (before the call reaches the emulator, or after, so the answer is lost), and for
``PutRecords`` a partial failure: some entries are really stored, the others come back
with an ``ErrorCode`` and are never stored. Every injected fault is counted.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("throttle", "server_error", "reset_before", "reset_after", "partial")


class FaultProxy:
    def __init__(self, upstream: str, rate: float, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        self.rate = rate
        self.kinds = kinds
        self.random = random.Random(seed)
        # In turn, not at random: every kind is injected once a few faults have been, however
        # the calls happen to interleave (the consumer reads ahead on a thread of its own).
        self.other_kinds = itertools.cycle([k for k in kinds if k != "partial"])
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    # -- the proxying ---------------------------------------------------------------------

    def _choose(self, operation: str) -> str | None:
        with self.lock:
            self.calls += 1
            if self.random.random() >= self.rate:
                return None
            if operation == "PutRecords" and "partial" in self.kinds and self.random.random() < 0.5:
                kind = "partial"  # the fault PutRecords callers most often get wrong
            else:
                kind = next(self.other_kinds)
            self.injected[kind] += 1
            return kind

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = request.headers.get("X-Amz-Target", "")
        service, _, operation = target.partition(".")
        kind = self._choose(operation)
        if kind == "reset_before":
            return self._reset(request)
        if kind == "throttle":
            return self._throttle(request, service)
        if kind == "server_error":
            return self._error(request, service)
        if kind == "partial":
            return self._partial_put(request, body)
        status, headers, payload = self._forward(request, body)
        if kind == "reset_after":
            return self._reset(request)
        self._reply(request, status, headers, payload)

    def _forward(self, request, body: bytes):
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Host"] = f"{self.upstream[0]}:{self.upstream[1]}"
        headers["Content-Length"] = str(len(body))
        connection.request(request.command, request.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        result = response.status, [(k, v) for k, v in response.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")], payload
        connection.close()
        return result

    @staticmethod
    def _reply(request, status: int, headers, payload: bytes) -> None:
        request.send_response(status)
        for key, value in headers:
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    @staticmethod
    def _reset(request) -> None:
        request.close_connection = True
        try:
            request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            request.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _json_error(self, request, status: int, code: str, message: str) -> None:
        payload = json.dumps({"__type": code, "message": message}).encode()
        self._reply(request, status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)], payload)

    def _xml_error(self, request, status: int, code: str, message: str) -> None:
        payload = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        self._reply(request, status, [("Content-Type", "application/xml")], payload)

    def _throttle(self, request, service: str) -> None:
        if service:  # JSON protocols: Kinesis, DynamoDB
            self._json_error(request, 400, "ProvisionedThroughputExceededException", "Rate exceeded (injected)")
        else:
            self._xml_error(request, 503, "SlowDown", "Please reduce your request rate (injected)")

    def _error(self, request, service: str) -> None:
        if service:
            self._json_error(request, 500, "InternalFailure", "injected server error")
        else:
            self._xml_error(request, 500, "InternalError", "injected server error")

    def _partial_put(self, request, body: bytes) -> None:
        call = json.loads(body)
        records = call["Records"]
        with self.lock:
            failed = {i for i in range(len(records)) if self.random.random() < 0.3} or {0}
        kept = [r for i, r in enumerate(records) if i not in failed]
        results: list[dict] = []
        stored: list[dict] = []
        if kept:
            status, headers, payload = self._forward(request, json.dumps({**call, "Records": kept}).encode())
            if status != 200:
                return self._reply(request, status, headers, payload)
            stored = json.loads(payload)["Records"]
        it = iter(stored)
        for i in range(len(records)):
            if i in failed:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                "ErrorMessage": "Rate exceeded for shard (injected)"})
            else:
                results.append(next(it))
        payload = json.dumps({"FailedRecordCount": len(failed), "Records": results}).encode()
        self._reply(request, 200, [("Content-Type", "application/x-amz-json-1.1")], payload)

