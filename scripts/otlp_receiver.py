#!/usr/bin/env python3
"""A real OTLP/HTTP trace receiver for StreamGate's tracing tests.

Listens on 127.0.0.1 (port 0: the kernel picks), prints `listening PORT` once ready, and decodes
every POST /v1/traces body (protobuf, optionally gzip) with the OpenTelemetry protocol's own
message classes (PyPI's opentelemetry-proto). Each span becomes one JSON line in OUT:
service, trace_id, span_id, parent_span_id (hex, "" for a root), name, kind, start_ns, end_ns,
status (code, message) and attributes. Anything it cannot decode is answered 400 and logged.
It exits when its standard input closes, so it never outlives the test that started it.

    otlp_receiver.py OUT
"""
import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [value_of(item) for item in value.values]
    if kind == "kvlist_value":
        return {item.key: value_of(item.value) for item in value.values}
    if kind == "bytes_value":
        return value.hex()
    return value


class Receiver(BaseHTTPRequestHandler):
    out = None

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # noqa: BLE001 - any decode failure is the sender's
            sys.stderr.write(f"otlp_receiver: undecodable body: {error}\n")
            self.send_response(400)
            self.end_headers()
            return
        lines = []
        for resource_spans in request.resource_spans:
            resource = {item.key: value_of(item.value) for item in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(json.dumps({
                        "service": resource.get("service.name"),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "status": {"code": span.status.code, "message": span.status.message},
                        "attributes": {item.key: value_of(item.value) for item in span.attributes},
                    }))
        with open(Receiver.out, "a", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def main():
    Receiver.out = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(f"listening {server.server_address[1]}", flush=True)
    # The test holds our stdin open; when it stops, or dies, so do we.
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
