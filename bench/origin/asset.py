"""bench/origin/asset.py: the asset's segments and the request lists made from them.

The asset is published in the store by run.sh (`streamgate transcode`); this reads which segments
its version has, and writes the lists paths.lua requests from: every segment in order (cold), HOT
segments spread over the asset (hot), and Zipf draws over every segment (zipf), with the hit rate a
cache holding exactly the most popular segments would reach.
"""

import os
import random
import re

from benchlib import Failure, median

SEGMENT = re.compile(r"^[0-9]+\.ts$")
ZIPF_SEED = 20261123  # the same ranks and draws in every run


def inventory(store, asset):
    """Every segment of the published version: [(relative path 'asset/rendition/NNNNN.ts', size)]."""
    root = os.path.join(store, "assets", asset)
    if not os.path.isdir(root):
        raise Failure(f"{root} does not exist: asset {asset} is not published in {store}")
    segments = []
    for rendition in sorted(os.listdir(root)):
        folder = os.path.join(root, rendition)
        if not os.path.isdir(folder) or rendition == "keys":
            continue
        for name in sorted(os.listdir(folder)):
            if SEGMENT.match(name):
                segments.append((f"{asset}/{rendition}/{name}", os.path.getsize(os.path.join(folder, name))))
    return segments


def write_list(path, lines):
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def zipf_list(segments, s, samples, seed):
    """Popularity ranks assigned to the segments at random; `samples` draws; plus the probabilities."""
    rng = random.Random(seed)
    ranked = [path for path, _ in segments]
    rng.shuffle(ranked)
    weights = [1.0 / (rank ** s) for rank in range(1, len(ranked) + 1)]
    total = sum(weights)
    probabilities = {path: weight / total for path, weight in zip(ranked, weights)}
    cumulative, running = [], 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    return rng.choices(ranked, cum_weights=cumulative, k=samples), probabilities


def oracle_hit_rate(segments, probabilities, budget):
    """Hit rate of a cache of `budget` bytes that holds exactly the most requested segments."""
    sizes = dict(segments)
    used, hit = 0, 0.0
    for path in sorted(probabilities, key=probabilities.get, reverse=True):
        if used + sizes[path] > budget:
            continue
        used += sizes[path]
        hit += probabilities[path]
    return hit


class Asset:
    """The segments of `asset` in `store` and the three request lists, written to WORK/lists/."""

    def __init__(self, store, asset, work, hot, zipf_s, zipf_samples, l1_bytes):
        self.store, self.name = store, asset
        self.segments = inventory(store, asset)
        self.total_bytes = sum(size for _, size in self.segments)
        self.renditions = sorted({path.split("/")[1] for path, _ in self.segments})
        self.files = [os.path.join(store, "assets", path) for path, _ in self.segments]
        lists = os.path.join(work, "lists")
        os.makedirs(lists, exist_ok=True)
        self.cold_list = os.path.join(lists, "cold.txt")
        self.hot_list = os.path.join(lists, "hot.txt")
        self.zipf_list = os.path.join(lists, "zipf.txt")
        self.zipf_s, self.zipf_samples, self.l1_bytes = zipf_s, zipf_samples, l1_bytes
        self.hot = hot

    def write_lists(self):
        segments = self.segments
        write_list(self.cold_list, [path for path, _ in segments])
        step = len(segments) / self.hot
        self.hot_paths = [segments[int(i * step + step / 2)][0] for i in range(self.hot)]
        write_list(self.hot_list, self.hot_paths)
        self.zipf_draws, probabilities = zipf_list(segments, self.zipf_s, self.zipf_samples, seed=ZIPF_SEED)
        write_list(self.zipf_list, self.zipf_draws)
        self.oracle = oracle_hit_rate(segments, probabilities, self.l1_bytes)

    def stored_bytes(self, path):
        with open(os.path.join(self.store, "assets", path), "rb") as stored:
            return stored.read()

    def describe(self):
        """The lines that say what is served and requested."""
        sizes = sorted(size for _, size in self.segments)
        hot_bytes = sum(dict(self.segments)[p] for p in self.hot_paths)
        return [
            f"asset: {self.name} in {self.store}: {len(self.segments)} segments in {len(self.renditions)} renditions "
            f"({', '.join(self.renditions)}), {self.total_bytes / 2**20:.0f} MiB, segment median {median(sizes) / 1e3:.0f} kB "
            f"(min {sizes[0] / 1e3:.0f}, max {sizes[-1] / 1e3:.0f})",
            f"hot set: {len(self.hot_paths)} segments ({hot_bytes / 2**20:.1f} MiB)",
            f"zipf: s={self.zipf_s}, {self.zipf_samples} draws over {len(self.segments)} segments "
            f"({len(set(self.zipf_draws))} drawn at least once); a {self.l1_bytes / 2**20:.0f} MiB cache holding "
            f"exactly the most popular ones would hit {self.oracle:.3f}",
        ]
