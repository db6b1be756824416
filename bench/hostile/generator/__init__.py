"""bench/hostile/generator: what generate.py writes, by container and by kind of file.

  base      the base clips (ffmpeg CLI, made once), the Writer (names, writes and lists every file),
            patch(), bit flips and truncations
  mp4       MP4 (ISO BMFF) boxes and their mutations
  ebml      Matroska and WebM elements and their mutations; Matroska with thousands of audio tracks
  mpegts    MPEG-TS packets and their mutations
  riff      AVI and WAV chunks and their mutations
  flv       FLV tags and their mutations
  mp3       MP3 frames, ID3v2 and Xing, and their mutations
  crafted   playlists, manifests, lists, SDP and data references naming other files or URLs; images
  h264      raw H.264 whose hand-written SPS declares huge pictures
  absurd    deep pictures, absurd durations and frame rates, many streams, tiny files

generate.py (run as a script, so bench/hostile/ is on sys.path) calls them in a fixed order, which
the manifest's order and the files' numbers follow; each kind draws from its own generator seeded
with the seed and the kind, so the same seed gives the same bytes.
"""
