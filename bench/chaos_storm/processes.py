"""bench/chaos_storm/processes.py: redis-server with an append-only file (stopped and started again
on it by the storm), and the /proc look-ups the storm needs: is a process alive, which are a
process's children.
"""

import os
import subprocess
import time

import redis


class RedisServer:
    """redis-server on a Unix socket with an append-only file; restarted on the same AOF."""

    def __init__(self, folder):
        self.folder, self.socket, self.process = folder, os.path.join(folder, "redis.sock"), None
        os.makedirs(folder, exist_ok=True)

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", self.folder,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--logfile", os.path.join(self.folder, "redis.log")])
        client = self.client()
        for _ in range(200):
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise SystemExit(f"bench/chaos: redis-server did not start (see {self.folder}/redis.log)")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def client(self, db=0):
        return redis.Redis(unix_socket_path=self.socket, db=db, socket_timeout=5, decode_responses=True)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(parent, needle):
    """Live processes whose parent is `parent` and whose command line contains `needle`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as cmd:
                line = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent and needle in line:
            found.append(int(name))
    return sorted(found)

