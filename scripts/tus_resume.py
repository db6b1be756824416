#!/usr/bin/env python3
"""Uploads a file to StreamGate with a real tus 1.0 client (tuspy), through a small TCP proxy that
drops the connection once after --drop-after bytes, then resumes from the offset the server
reports (HEAD), as a client on a flaky network would. --resume-endpoint sends the resumed requests
to another origin (sharing Redis and the store).

Prints one JSON line: {"url", "job_id", "drops", "resumed_from": [offsets], "attempts"}.
Exits 0 once the upload is complete, 1 otherwise. Run with the project's .venv (scripts/python-env.sh).
"""
import argparse
import json
import socket
import sys
import threading
import time
from urllib.parse import urlparse

from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


class DroppingProxy:
    """Forwards 127.0.0.1:<port> to the origin; after `drop_after` bytes from the client (in total,
    across connections) it closes both sides of the connection carrying them, once."""

    def __init__(self, target_port, drop_after):
        self.target_port = target_port
        self.remaining = drop_after
        self.dropped = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self.pump, args=(downstream, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, downstream, False), daemon=True).start()

    def pump(self, source, sink, from_client):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    with self.lock:
                        armed = self.dropped == 0
                        if armed and len(data) >= self.remaining:
                            data = data[: self.remaining]
                            self.remaining = 0
                            self.dropped = 1
                            cut = True
                        else:
                            if armed:
                                self.remaining -= len(data)
                            cut = False
                    sink.sendall(data)
                    if cut:
                        # The connection dies mid-request: the server has part of a PATCH body.
                        for end in (source, sink):
                            try:
                                end.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                            end.close()
                        return
                else:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="the origin, http://127.0.0.1:PORT")
    parser.add_argument("--resume-endpoint", help="another origin to resume on (default: the same)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--chunk-size", type=int, default=2 << 20)
    parser.add_argument("--drop-after", type=int, required=True, help="client bytes before the connection is dropped")
    parser.add_argument("--metadata", action="append", default=[], help="key=value, repeated")
    parser.add_argument("--checksum", action="store_true", help="send Upload-Checksum (sha1) with every PATCH")
    parser.add_argument("--deadline", type=float, default=25.0)
    arguments = parser.parse_args()

    origin = urlparse(arguments.endpoint)
    proxy = DroppingProxy(origin.port, arguments.drop_after)
    headers = {"Authorization": "Bearer " + arguments.key}
    metadata = dict(item.split("=", 1) for item in arguments.metadata)
    client = tus.TusClient("http://127.0.0.1:%d/v1/uploads" % proxy.port, headers=headers)
    uploader = client.uploader(arguments.file, chunk_size=arguments.chunk_size, metadata=metadata, upload_checksum=arguments.checksum)

    resumed_from = []
    attempts = 0
    deadline = time.monotonic() + arguments.deadline
    while time.monotonic() < deadline:
        attempts += 1
        try:
            uploader.upload()
            break
        except (TusCommunicationError, TusUploadFailed) as error:
            print("upload interrupted: %s" % (error,), file=sys.stderr)
        time.sleep(0.2)
        if arguments.resume_endpoint and uploader.url:
            # The upload's URL on the other origin: same path, another host.
            path = urlparse(uploader.url).path
            uploader.set_url(arguments.resume_endpoint.rstrip("/") + path)
        try:
            uploader.offset = uploader.get_offset()
            resumed_from.append(uploader.offset)
        except TusCommunicationError as error:
            print("HEAD failed: %s" % (error,), file=sys.stderr)
    complete = uploader.offset == uploader.get_file_size()
    job_id = uploader.request.response_headers.get("streamgate-job-id") if uploader.request else None
    print(json.dumps({"url": uploader.url, "job_id": job_id, "drops": proxy.dropped, "resumed_from": resumed_from,
                      "attempts": attempts, "offset": uploader.offset}))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
