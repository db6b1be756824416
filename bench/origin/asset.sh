# bench/origin/asset.sh: the asset bench/origin and bench/origin-s3 serve, made once per profile and
# source settings and kept in $work/asset-<key>/ (store/, master.key, recipe.txt). Sourced after
# `cd` to the repository root, with $root, $work, $binary, $source_seconds and a `fail` function set;
# origin_bench_asset sets $profile, $asset_key, $asset_dir, $store and $key_file.

origin_bench_asset() {
  profile=$root/bench/origin/profile.yaml
  [[ -f $profile ]] || fail "$profile is missing"
  source_size=960x540
  source_fps=25
  # Light temporal noise so the encoders have to spend their bitrate, like camera footage.
  source_filter="noise=alls=8:allf=t+u,format=yuv420p"
  recipe="v1 testsrc2 $source_size $source_fps fps ${source_seconds}s filter=$source_filter x264 ultrafast crf 23 g $source_fps; sine 440 Hz aac 128k"
  asset_key=$({ cat "$profile"; echo "$recipe"; } | sha256sum | cut -c1-12)
  asset_dir=$work/asset-$asset_key
  store=$asset_dir/store
  key_file=$asset_dir/master.key

  if [[ ${REGENERATE:-0} == 1 ]]; then rm -rf "$asset_dir"; fi
  if [[ ! -f $asset_dir/complete ]]; then
    rm -rf "$asset_dir"
    mkdir -p "$asset_dir"
    echo "bench/origin: making the asset once ($source_seconds s $source_size source, profile $profile) in $asset_dir" >&2
    t0=$(date +%s)
    partial=$asset_dir/source.partial.mp4
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "testsrc2=size=$source_size:rate=$source_fps:duration=$source_seconds" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$source_seconds" \
      -vf "$source_filter" -c:v libx264 -preset ultrafast -crf 23 -g "$source_fps" -pix_fmt yuv420p \
      -c:a aac -b:a 128k -ac 2 -ar 48000 -shortest "$partial" \
      || fail "ffmpeg could not make the source clip"
    mv "$partial" "$asset_dir/source.mp4"
    openssl rand -base64 32 >"$key_file"
    env -u STREAMGATE_MASTER_KEY -u STREAMGATE_MASTER_KEY_FILE \
      "$binary" transcode "$asset_dir/source.mp4" --profile "$profile" --out "$store" --asset-id bench \
      --master-key-file "$key_file" --json --quiet >"$asset_dir/transcode.json" 2>"$asset_dir/transcode.log" \
      || { tail -n 5 "$asset_dir/transcode.log" >&2; fail "streamgate transcode failed (log $asset_dir/transcode.log)"; }
    rm -f "$asset_dir/source.mp4"
    printf '%s\n' "$recipe" >"$asset_dir/recipe.txt"
    touch "$asset_dir/complete"
    echo "bench/origin: asset made in $(( $(date +%s) - t0 )) s" >&2
  fi
}
