import HLS
import Profiles

/// Playlists the origin and the tools read back from a store, and ladder profiles.
enum MediaHarnesses {
    /// Media playlists; what parses is also written and read again (neither may trap; the writer
    /// rounds durations, so the second reading is not compared).
    static let mediaPlaylist = Harness("media-playlist", maxLength: 4096, "MediaPlaylist.parse, render, parse") { bytes in
        guard let playlist = try? MediaPlaylist.parse(bytes.text) else { return }
        let target = playlist.targetDuration ?? 0
        for segment in playlist.segments {
            require(segment.duration.isFinite && segment.duration >= 0, "segment duration \(segment.duration)")
            require(segment.duration.rounded(.toNearestOrAwayFromZero) <= Double(target), "a segment longer than the target duration \(target)")
        }
        _ = try? MediaPlaylist.parse(playlist.render())
    }

    /// Multivariant playlists, likewise.
    static let multivariantPlaylist = Harness("multivariant-playlist", maxLength: 4096, "MultivariantPlaylist.parse, render, parse") { bytes in
        guard let playlist = try? MultivariantPlaylist.parse(bytes.text) else { return }
        let audioGroups = Set(playlist.renditions.filter { $0.type == .audio }.map(\.groupID))
        for variant in playlist.variants {
            require(variant.bandwidth >= 0, "negative BANDWIDTH")
            if let group = variant.audioGroup { require(audioGroups.contains(group), "AUDIO group \(group) not declared") }
        }
        _ = try? MultivariantPlaylist.parse(playlist.render())
    }

    /// Ladder profiles: whatever is accepted keeps to what the parser promises the transcoder.
    static let profile = Harness("profile", maxLength: 4096, "Profile.parse(yaml:file:)") { bytes in
        let profile: Profile
        do {
            profile = try Profile.parse(yaml: bytes.text, file: "fuzz.yaml")
        } catch {
            _ = "\(error)"
            return
        }
        require(!profile.rungs.isEmpty || profile.audio != nil, "a profile with neither rungs nor audio")
        require(profile.segmentDuration > 0 && profile.segmentDuration <= 60, "segment duration \(profile.segmentDuration)")
        require(profile.keyframeInterval > 0 && profile.keyframeInterval <= profile.segmentDuration, "keyframe interval \(profile.keyframeInterval)")
        require(profile.keyRotationSegments >= 0, "negative key rotation")
        var previousArea = Int.max
        for rung in profile.rungs {
            require((16...8192).contains(rung.width) && (16...8192).contains(rung.height), "rung \(rung.name) is \(rung.width)x\(rung.height)")
            require(rung.bitrate > 0 && rung.maxrate >= rung.bitrate && rung.bufsize > 0, "rung \(rung.name)'s rates")
            require(rung.width * rung.height <= previousArea, "rungs not sorted largest first")
            previousArea = rung.width * rung.height
        }
        if let audio = profile.audio {
            require(audio.bitrate > 0 && (audio.channels == 1 || audio.channels == 2), "audio settings")
        }
    }
}
