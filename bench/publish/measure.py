"""bench/publish: upload -> first playable and upload -> fully published through the real stack.

Run by bench/publish/run.sh (which builds the binary and makes the sources). For each source it
uploads through `POST /v1/uploads` of a running `streamgate dev`, then polls the origin until a
player can start (the multivariant playlist answers and the first segment and key of every
rendition it lists are served) and the job's record until it succeeded. The same source is then
published again to the same asset: a republish is never shown while it grows, so its full time is
the same work without progressive publish. Beside it, the ffmpeg command-line tool writes the
same ladder (time to its first segment of every rung, and to its exit).
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def playable(origin, asset):
    """True once a player can start: master, and each rung's playlist, first segment and key."""
    status, master = get(f"{origin}/v/{asset}/master.m3u8")
    if status != 200:
        return False
    master_url = f"{origin}/v/{asset}/master.m3u8"
    for line in master.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        media_url = urllib.parse.urljoin(master_url, line)
        status, media = get(media_url)
        if status != 200:
            return False
        text = media.decode()
        key = re.search(r'URI="([^"]+)"', text)
        segment = next((l for l in text.splitlines() if l and not l.startswith("#")), None)
        if segment is None or key is None:
            return False
        for uri in (segment, key.group(1)):
            if get(urllib.parse.urljoin(media_url, uri))[0] != 200:
                return False
    return True


def publish(origin, api_key, source, asset, profile):
    """(first playable s, fully published s, shown while growing) after the upload's last byte."""
    size = os.path.getsize(source)
    with open(source, "rb") as body:
        request = urllib.request.Request(
            f"{origin}/v1/uploads?profile={profile}&asset_id={asset}", data=body, method="POST",
            headers={"Authorization": f"Bearer {api_key}", "Content-Length": str(size)},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            job = json.loads(response.read())["job_id"]
    uploaded = time.monotonic()
    first = None
    while True:
        if first is None and playable(origin, asset):
            first = time.monotonic() - uploaded
        status, body = get(f"{origin}/v1/jobs/{job}", {"Authorization": f"Bearer {api_key}"})
        record = json.loads(body) if status == 200 else {}
        if record.get("state") in ("succeeded", "failed", "dead", "cancelled"):
            if record["state"] != "succeeded":
                sys.exit(f"bench/publish: job {job} ended {record['state']}: {record.get('error')}")
            full = time.monotonic() - uploaded
            return (first if first is not None else full), full, record.get("playable_at") is not None
        time.sleep(0.02)


def listed(playlist):
    """True once ffmpeg's playlist lists a segment (it writes it after each one)."""
    try:
        with open(playlist) as text:
            return "#EXTINF" in text.read()
    except OSError:
        return False


def ffmpeg_ladder(source, out, rungs):
    """(first segment of every rung s, exit s) for the ffmpeg command line writing the ladder, as
    an EVENT playlist: the form in which it writes each playlist after every segment (a VOD one
    only at the end), so a player could start on it."""
    os.makedirs(out, exist_ok=True)
    split = "".join(f"[s{i}]" for i in range(len(rungs)))
    scales = "".join(f";[s{i}]scale={w}:{h}[v{i}]" for i, (_, w, h, *_rest) in enumerate(rungs))
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", source,
               "-filter_complex", f"[0:v]split={len(rungs)}{split}{scales}"]
    stream_map = []
    for i, (name, _w, _h, bitrate, maxrate, bufsize) in enumerate(rungs):
        command += ["-map", f"[v{i}]", "-map", "0:a:0", f"-b:v:{i}", bitrate, f"-maxrate:v:{i}", maxrate, f"-bufsize:v:{i}", bufsize]
        stream_map.append(f"v:{i},a:{i},name:{name}")
    command += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "60",
                "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
                "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "event", "-var_stream_map", " ".join(stream_map),
                "-master_pl_name", "master.m3u8", "-hls_segment_filename", f"{out}/%v/%05d.ts", f"{out}/%v/index.m3u8"]
    started = time.monotonic()
    process = subprocess.Popen(command)
    first = None
    while process.poll() is None:
        if first is None and all(listed(f"{out}/{r[0]}/index.m3u8") for r in rungs):
            first = time.monotonic() - started
        time.sleep(0.02)
    if process.returncode != 0:
        sys.exit("bench/publish: the ffmpeg ladder failed")
    full = time.monotonic() - started
    return (first if first is not None else full), full


def main():
    origin, api_key, work = sys.argv[1], sys.argv[2], sys.argv[3]
    lengths = [int(x) for x in sys.argv[4].split(",")]
    runs = int(os.environ.get("RUNS", "1"))
    # profiles/default.yaml below the 720p source (larger rungs are never encoded).
    rungs = [("720p", 1280, 720, "3000k", "3300k", "6000k"), ("540p", 960, 540, "2000k", "2200k", "4000k"),
             ("432p", 768, 432, "1100k", "1210k", "2200k"), ("360p", 640, 360, "365k", "400k", "730k")]
    mux = {10: 2.0, 60: 3.3, 300: 9.0}
    summary = {}
    print(f"{'source':>8} {'first playable':>15} {'full':>8} {'republish':>10} {'ffmpeg first':>13} {'ffmpeg full':>12} {'Mux median':>11}")
    for seconds in lengths:
        source = f"{work}/source-720p30-{seconds}s.mp4"
        firsts, fulls, wholes, ff_firsts, ff_fulls = [], [], [], [], []
        for run in range(runs):
            asset = f"bench-{seconds}s-{os.getpid()}-{run}"
            first, full, shown = publish(origin, api_key, source, asset, "default")
            if not shown:
                sys.exit(f"bench/publish: {asset} was not shown while it grew")
            _, whole, _ = publish(origin, api_key, source, asset, "default")
            ff_first, ff_full = ffmpeg_ladder(source, f"{work}/ffmpeg-{seconds}s-{run}", rungs)
            firsts.append(first); fulls.append(full); wholes.append(whole); ff_firsts.append(ff_first); ff_fulls.append(ff_full)
        m = {k: statistics.median(v) for k, v in
             dict(first=firsts, full=fulls, whole=wholes, ff_first=ff_firsts, ff_full=ff_fulls).items()}
        print(f"{seconds:>7}s {m['first']:>14.2f}s {m['full']:>7.1f}s {m['whole']:>9.1f}s {m['ff_first']:>12.2f}s {m['ff_full']:>11.1f}s {mux.get(seconds, 0):>10.1f}s")
        summary[f"first_playable_s_{seconds}"] = f"{m['first']:.2f}"
        summary[f"full_s_{seconds}"] = f"{m['full']:.1f}"
        summary[f"ffmpeg_first_segment_s_{seconds}"] = f"{m['ff_first']:.2f}"
        summary[f"ffmpeg_full_s_{seconds}"] = f"{m['ff_full']:.1f}"
        summary[f"progressive_overhead_{seconds}"] = f"{m['full'] / m['whole']:.3f}"
    print("summary " + " ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
