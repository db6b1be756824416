import Foundation
import Jobs
import Store

/// What an upload service puts on the queue: job descriptions and the webhook address in them.
enum JobHarnesses {
    /// A job's `job` field: parsed, validated as the API does, and written back as the queue stores
    /// it, which must parse to the same job.
    static let jobSpec = Harness("job-spec", maxLength: 4096, "JobSpec.parse, validate, json() read back") { bytes in
        let spec: JobSpec
        do {
            spec = try JobSpec.parse(bytes.text)
        } catch {
            _ = "\(error)"
            return
        }
        do {
            try spec.validate(callbackPolicy: .publicOnly)
        } catch {
            _ = "\(error)"
        }
        let stored = spec.json()
        let again = try? JobSpec.parse(stored)
        require(again == spec, "a job written as \(stored) reads back as another job")
    }

    /// What a transcode child says to its worker (an event line) and writes for it (a playlist
    /// the worker resolves before storing it): the child is treated as hostile.
    static let childOutput = Harness("child-output", maxLength: 4096, "TranscodeEvent(line:), StagedPlaylist.files(namedBy:at:)") { bytes in
        let text = bytes.text
        if let event = try? TranscodeEvent(line: text), case .stored(let file) = event {
            require(StorePath.isSafeRelative(file), "a stored event named \(file)")
        }
        for file in StagedPlaylist.files(namedBy: text, at: "720p/index.m3u8") {
            require(!file.hasPrefix("/") && !file.split(separator: "/").contains(".."), "resolved to \(file)")
        }
    }

    /// What a part of a split transcode records for the job that assembles it (its manifest,
    /// from a child), and the split plan a child says: whatever is accepted names only plain files
    /// and covers the source without gap.
    static let partManifest = Harness("part-manifest", maxLength: 8192, "PartManifest.parse, SplitPlan.validated") { bytes in
        let text = bytes.text
        if case .success(let manifest) = PartManifest.parse(text) {
            for rendition in manifest.renditions {
                require(!rendition.name.contains("/") && !rendition.name.hasPrefix("."), "a rendition named \(rendition.name)")
                for segment in rendition.segments {
                    require(!segment.file.contains("/") && segment.duration.isFinite && segment.key.utf8.count == 32, "a segment \(segment)")
                }
            }
        }
        if let plan = try? JSONDecoder().decode(SplitPlan.self, from: Data(text.utf8)), case .success(let checked) = plan.validated() {
            require(checked.chunks.first?.start == 0 && checked.chunks.last?.end == nil, "a plan \(checked.chunks)")
            for (chunk, next) in zip(checked.chunks, checked.chunks.dropFirst()) {
                require(chunk.end == next.start && next.start > chunk.start, "chunks \(chunk) then \(next)")
            }
        }
    }

    /// Webhook addresses: whatever is accepted names one port, one scheme, and — for a numeric
    /// host — the address glibc's resolver would connect to.
    static let callbackURL = Harness("callback-url", maxLength: 2100, "CallbackURL(_:) and its literal verdict") { bytes in
        let text = bytes.text
        let url: CallbackURL
        do {
            url = try CallbackURL(text)
        } catch {
            _ = "\(error)"
            return
        }
        require(url.scheme == "http" || url.scheme == "https", "scheme \(url.scheme)")
        require((1...65535).contains(url.port), "port \(url.port)")
        require(!url.clientHost.isEmpty, "an empty host for the client")
        switch url.host {
        case .address(let address) where address.family == .v4:
            // What getaddrinfo does with a numeric host: inet_aton, which must read the same address.
            var parsed = in_addr()
            require(inet_aton(url.clientHost, &parsed) == 1, "host \(url.clientHost) read as \(address), but inet_aton refuses it")
            let resolved = withUnsafeBytes(of: &parsed) { Array($0) }
            require(resolved == address.bytes, "host \(url.clientHost) read as \(address), inet_aton reads \(resolved)")
        case .address:
            break
        case .name(let name):
            require(name == name.lowercased() && !name.isEmpty, "host name \(name)")
        }
        _ = url.literalVerdict(.publicOnly)
    }
}
