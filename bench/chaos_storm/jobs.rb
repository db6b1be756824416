# bench/chaos's Sidekiq side: a job doing what a StreamGate transcode job does, the way a Sidekiq
# application would write it: the `ffmpeg` CLI transcodes the clip into the two rungs of
# profiles/fast.yaml (HLS, 2 s segments, AES-128), into a staging folder of the store, which is then
# published by rename into the same layout as StreamGate's store (objects/<asset>/<version>, and
# assets/<asset> a link swapped with one rename). Every attempt appends `start`, then `done` or
# `fail`, to the runs log (a plain file outside the store, so the disk-full window cannot eat it).
#
# Server: CHAOS_STORE=… CHAOS_RUNS=… REDIS_URL=unix://… sidekiq -r ./jobs.rb -c 1 -q chaos
# Enqueue: ruby jobs.rb enqueue SOCKET CLIPS_DIR JOBS   (one Sidekiq::Client.push_bulk)
require "fileutils"
require "json"
require "securerandom"
require "sidekiq"

# Debian's redis gem (4.8) warns on every call Sidekiq 6.4 makes the old way; per job, on stderr.
Redis.silence_deprecations = true

class ChaosTranscode
  include Sidekiq::Worker
  sidekiq_options queue: "chaos" # retries: Sidekiq's default (25, exponential backoff)

  def perform(asset, clip)
    store = ENV.fetch("CHAOS_STORE")
    record("start", asset)
    staging = File.join(store, "staging", "#{asset}.#{SecureRandom.hex(4)}")
    begin
      FileUtils.mkdir_p(File.join(staging, "keys"))
      File.binwrite(File.join(staging, "keys", "k0.key"), SecureRandom.random_bytes(16))
      keyinfo = File.join(staging, "keyinfo")
      File.write(keyinfo, "../keys/k0\n#{staging}/keys/k0.key\n#{SecureRandom.hex(16)}\n")
      transcode(clip, staging, keyinfo)
      File.delete(keyinfo)
      File.write(File.join(staging, "asset.json"), JSON.generate({ "asset_id" => asset, "jid" => jid }))
      version = "v#{Time.now.utc.strftime('%Y%m%dT%H%M%SZ')}-#{SecureRandom.hex(6)}"
      objects = File.join(store, "objects", asset)
      FileUtils.mkdir_p(objects)
      File.rename(staging, File.join(objects, version))
      link = File.join(store, "assets", asset)
      temporary = File.join(store, "assets", ".#{asset}.#{version}.link")
      FileUtils.mkdir_p(File.dirname(link))
      File.symlink("../objects/#{asset}/#{version}", temporary)
      File.rename(temporary, link)
      record("done", asset, version)
    rescue StandardError => error
      record("fail", asset, error.message.lines.first.to_s.strip)
      raise
    ensure
      FileUtils.rm_rf(staging)
    end
  end

  private

  # The rungs of profiles/fast.yaml: 640x360 800k (main) and 426x240 400k (baseline), x264
  # ultrafast, an IDR every second, AAC 96k stereo 48 kHz, 2 s segments. setpriv's pdeathsig ends
  # ffmpeg with its Sidekiq process, as StreamGate's transcode children end with their worker.
  def transcode(clip, out, keyinfo)
    command = [
      "setpriv", "--pdeathsig", "KILL", "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", clip,
      "-filter_complex", "[0:v]split=2[a][b];[a]scale=640:360[v0];[b]scale=426:240[v1]",
      "-map", "[v0]", "-map", "0:a", "-map", "[v1]", "-map", "0:a",
      "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
      "-b:v:0", "800k", "-maxrate:v:0", "880k", "-bufsize:v:0", "1600k", "-profile:v:0", "main",
      "-b:v:1", "400k", "-maxrate:v:1", "440k", "-bufsize:v:1", "800k", "-profile:v:1", "baseline",
      "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-ar", "48000",
      "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_key_info_file", keyinfo,
      "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:240p", "-master_pl_name", "master.m3u8",
      "-hls_segment_filename", "#{out}/%v/%05d.ts", "#{out}/%v/index.m3u8",
    ]
    errors = IO.pipe
    pid = Process.spawn(*command, err: errors[1], out: File::NULL)
    errors[1].close
    message = errors[0].read
    errors[0].close
    Process.wait(pid)
    raise "ffmpeg exited #{$?.exitstatus.inspect}: #{message.lines.last.to_s.strip}" unless $?.success?
  end

  def record(what, asset, detail = "")
    line = "#{format('%.3f', Time.now.to_f)} #{what} #{asset} #{jid} #{Process.pid} #{detail}\n"
    File.open(ENV.fetch("CHAOS_RUNS"), "a") { |file| file.write(line) }
  end
end

if $PROGRAM_NAME == __FILE__ && ARGV[0] == "enqueue"
  socket, clips, jobs = ARGV[1], ARGV[2], Integer(ARGV[3])
  Sidekiq.configure_client { |config| config.redis = { url: "unix://#{socket}" } }
  names = Dir.children(clips).select { |name| name.end_with?(".mp4") }.sort
  args = Array.new(jobs) { |i| [format("chaos-%03d", i + 1), File.join(clips, names[i % names.size])] }
  Sidekiq::Client.push_bulk("class" => ChaosTranscode, "args" => args)
end
