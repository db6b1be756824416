"""bench/origin/servers.py: the servers bench/origin loads, each a benchlib Process.

StreamGate is `BINARY serve --store STORE --l1-bytes L1 --master-key-file KEY` plus its extra
arguments; in baseline mode a second one, named `baseline`, runs an older binary on the same store
with the same arguments (its own extra ones). nginx serves the store's files as they are; in front
of a bucket (bench/origin-s3) it is a caching reverse proxy (NginxProxy).
"""

import grp
import os
import pwd
import shutil

from benchlib import Metrics, Process, with_children


class StreamGate(Process):
    prefix = "/v/"
    streamgate = True  # has /metrics and a VmHWM worth reading

    def __init__(self, work, pids_file, binary, store, key_file, l1_bytes, extra, name="streamgate"):
        super().__init__(name, pids_file)
        self.work, self.binary, self.store, self.key_file, self.l1_bytes, self.extra = work, binary, store, key_file, l1_bytes, extra
        self.starts = 0

    def start(self):
        self.starts += 1
        environment = dict(os.environ)
        environment.pop("STREAMGATE_MASTER_KEY", None)  # the key file is the one the store was made with
        self.start_http(lambda port: [self.binary, "serve", "--store", self.store, "--host", "127.0.0.1", "--port", str(port),
                                      "--l1-bytes", str(self.l1_bytes), "--master-key-file", self.key_file, *self.extra],
                        os.path.join(self.work, f"{self.name}-{self.starts}.log"), environment)

    def metrics(self):
        return Metrics.fetch(self.port)


class Nginx(Process):
    prefix = "/"
    streamgate = False

    def __init__(self, work, pids_file, binary, store):
        super().__init__("nginx", pids_file)
        self.work, self.binary, self.root = work, binary, os.path.join(store, "assets")
        self.starts = 0

    def start(self):
        self.starts += 1
        self.start_http(self.command_for, os.path.join(self.work, f"nginx-{self.starts}.log"))

    def command_for(self, port):
        """Writes nginx.conf for `port`; returns the command that runs nginx with it."""
        prefix = os.path.join(self.work, "nginx")
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", folder), exist_ok=True)
        # As root the master drops its workers to `user`; the store's version folders are 0700 and
        # belong to whoever made them, so the workers keep the invoking user's identity.
        user = ""
        if os.geteuid() == 0:
            user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as out:
            out.write(f"""# Written by bench/origin for one run; the anchor serves the store's files as they are.
daemon off;
master_process on;
worker_processes auto;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    types {{
        video/mp2t ts;
        application/vnd.apple.mpegurl m3u8;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=10000 inactive=60s;
    # nginx closes a keep-alive connection after 1000 requests by default; StreamGate never does.
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {self.root};
        location = /healthz {{
            return 200 "ok\\n";
        }}
    }}
}}
""")
        return [self.binary, "-p", prefix + "/", "-c", conf, "-e", f"{prefix}/error.log"]

    def pids(self):
        """The master and its workers."""
        return with_children(self.pid) if self.pid else []


def l1_moved(before, after):
    """(hits, misses) of StreamGate's L1 between two /metrics readings; None when the counters are missing."""
    counts = [metrics.sum("streamgate_origin_cache_total", level="l1", result=result)
              for metrics in (before, after) for result in ("hit", "miss")]
    if None in counts:
        return None
    return counts[2] - counts[0], counts[3] - counts[1]


class NginxProxy(Nginx):
    """nginx as the caching reverse proxy a user would put in front of a bucket: proxy_cache with
    the same size as StreamGate's L1, proxy_cache_lock on (one upstream GET per miss, however many
    ask at once), every 200 kept; the bucket is read anonymously (nginx cannot sign requests)."""

    def __init__(self, work, pids_file, binary, upstream, location, upstream_path, cache_bytes):
        super().__init__(work, pids_file, binary, store="")
        # `location` (/ASSET/) maps to `upstream_path` (/BUCKET/PREFIX/objects/ASSET/VERSION/) on `upstream` (host:port).
        self.upstream, self.location, self.upstream_path, self.cache_bytes = upstream, location, upstream_path, cache_bytes

    def command_for(self, port):
        prefix = os.path.join(self.work, "nginx")
        cache = os.path.join(prefix, "cache")
        # A fresh process starts with an empty cache, as a fresh StreamGate starts with an empty L1.
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache, exist_ok=True)
        command = super().command_for(port)
        conf = command[command.index("-c") + 1]
        with open(conf) as text:
            written = text.read()
        zone_mib = max(1, self.cache_bytes // (64 << 20))  # keys: about 8,000 per MiB
        written = written.replace("    server {", f"""    proxy_cache_path {cache} levels=1:2 keys_zone=segments:{zone_mib}m max_size={self.cache_bytes} inactive=1d use_temp_path=off;
    upstream bucket {{
        server {self.upstream};
        keepalive 64;
    }}
    server {{""", 1).replace(f"        root {self.root};\n", f"""        location {self.location} {{
            proxy_pass http://bucket{self.upstream_path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache segments;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 30s;
            proxy_cache_valid 200 1y;
            proxy_cache_use_stale updating;
        }}
""")
        with open(conf, "w") as out:
            out.write(written)
        return command
