"""bench/chaos_storm/store.py: a side's store — the tmpfs mounted for it and the disk-full window on
it — and what is in it afterwards: per asset, its versions and what the linked one lacks.
"""

import errno
import os
import re
import subprocess
import time


class Store:
    """A tmpfs of STORE_MIB mounted for one side, and the disk-full window on it."""

    def __init__(self, folder, mib):
        self.folder, self.mib, self.filler = folder, mib, os.path.join(folder, "filler")
        os.makedirs(folder, exist_ok=True)
        if os.path.ismount(folder):
            subprocess.run(["umount", folder], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", folder], check=True)
        self.full_since = None
        self.filled_bytes = 0

    def fill(self):
        """Writes the filler until the filesystem refuses (ENOSPC)."""
        block = b"\0" * (1 << 20)
        with open(self.filler, "wb", buffering=0) as out:
            while True:
                try:
                    self.filled_bytes += out.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
        self.full_since = time.monotonic()

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def unmount(self):
        subprocess.run(["umount", self.folder], check=False)


def versions_and_checks(store):
    """Per asset: the versions under objects/, the linked one, and what the linked one lacks."""
    report = {}
    objects, assets = os.path.join(store, "objects"), os.path.join(store, "assets")
    for asset in sorted(os.listdir(objects)) if os.path.isdir(objects) else []:
        versions = sorted(n for n in os.listdir(os.path.join(objects, asset)) if not n.startswith("."))
        report[asset] = {"versions": len(versions), "linked": None, "missing": []}
    for asset in sorted(os.listdir(assets)) if os.path.isdir(assets) else []:
        if asset.startswith("."):
            continue
        entry = report.setdefault(asset, {"versions": 0, "linked": None, "missing": []})
        target = os.readlink(os.path.join(assets, asset))
        entry["linked"] = os.path.basename(target)
        entry["missing"] = missing_files(os.path.join(assets, target))
    return report


def missing_files(version):
    """Files the version's playlists name (media playlists, segments, keys) or the store requires
    (master.m3u8, asset.json) that are absent or empty."""
    missing = [name for name in ("master.m3u8", "asset.json") if not nonempty(os.path.join(version, name))]
    if missing:
        return missing
    for uri in uris(os.path.join(version, "master.m3u8")):
        playlist = os.path.join(version, uri)
        if not nonempty(playlist):
            missing.append(uri)
            continue
        folder = os.path.dirname(playlist)
        for name in uris(playlist):
            if not nonempty(os.path.join(folder, name)):
                missing.append(os.path.relpath(os.path.join(folder, name), version))
        with open(playlist) as text:
            for key in set(re.findall(r'#EXT-X-KEY:[^\n]*URI="([^"]+)"', text.read())):
                path = os.path.normpath(os.path.join(folder, key)) + ".key"
                if not nonempty(path):
                    missing.append(os.path.relpath(path, version))
    return missing


def uris(playlist):
    with open(playlist) as text:
        return [line.strip() for line in text if line.strip() and not line.startswith("#")]


def nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0

