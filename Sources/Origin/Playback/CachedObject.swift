import Foundation
import NIOCore
import Store

// L1's objects: what each holds, and how a missing one is loaded (L2, then the store).

/// A load found no such file: the single flight's waiters all get nil.
private struct Missing: Error {}

extension OriginRoutes {
    /// The file `known` names (of `type`) in `version`, from L1; else the work of loading it once
    /// (L2, then the store, however many requests miss at once) into L1. nil: no such file.
    func cachedObject(_ known: KnownTarget, _ type: MediaType, in version: PublishedVersion, mode: PlaybackMode) -> Lookup<CachedObject?> {
        if version.isGrowing, type == .playlist { return growingPlaylist(known, in: version) }
        // A miss counts (in L1's frequency sketch and the metrics) only where the load follows.
        if let cached = cache.get(known.cacheKey(in: version), countingMiss: mode == .mayLoad) { return .known(cached) }
        if mode == .mayLoad { counted(l1Hit: false) }
        let relative = known.target.relative
        let rewritten = known.isEntryPlaylist
        return .load { try await self.load(version, relative, type: type, rewritten: rewritten) }
    }

    /// Loads a file of `version` into L1 (once, however many ask at once); nil: no such file. An
    /// entry playlist (`rewritten`) is made from the version's own, its URIs naming the version.
    func load(_ version: PublishedVersion, _ relative: String, type: MediaType, rewritten: Bool, readAhead: Bool = false) async throws -> CachedObject? {
        let name = Self.objectName(version, relative)
        let key = Self.cacheKey(name, rewritten: rewritten)
        do {
            return try await flights.value(for: key, counted: !readAhead) {
                let body: ObjectBytes
                if rewritten {
                    var original = self.cache.get(Self.cacheKey(name, rewritten: false))
                    if original == nil { original = try await self.load(version, relative, type: type, rewritten: false) }
                    guard let original else { throw Missing() }
                    body = Self.entryBody(of: original, relative, type: type, in: version)
                } else {
                    guard let loaded = try await self.loadBytes(name, version: version, relative: relative) else { throw Missing() }
                    body = loaded
                }
                let object = CachedObject(
                    body: body, type: type, version: version.version, relative: relative, entry: rewritten,
                    cacheControl: (self.cacheControl(versioned: true), self.cacheControl(versioned: false))
                )
                self.cache.put(key, object, cost: object.cost)
                return object
            }
        } catch is Missing {
            return nil
        }
    }

    /// A playlist of a growing version, from ``GrowingPlaylists``; else read from the store (once,
    /// however many ask at once; never from L2) and kept there a moment. An entry playlist is made
    /// from the version's own, as for a whole version.
    private func growingPlaylist(_ known: KnownTarget, in version: PublishedVersion) -> Lookup<CachedObject?> {
        let key = known.cacheKey(in: version)
        if let kept = growing.get(key) { return .known(kept) }
        let (relative, rewritten) = (known.target.relative, known.isEntryPlaylist)
        return .load { try await self.loadGrowing(version, relative, rewritten: rewritten) }
    }

    private func loadGrowing(_ version: PublishedVersion, _ relative: String, rewritten: Bool) async throws -> CachedObject? {
        let name = Self.objectName(version, relative)
        let key = Self.cacheKey(name, rewritten: rewritten)
        do {
            return try await flights.value(for: key + "~growing", counted: true) {
                var body: ObjectBytes
                if rewritten {
                    var original = self.growing.get(Self.cacheKey(name, rewritten: false))
                    if original == nil { original = try await self.loadGrowing(version, relative, rewritten: false) }
                    guard let original else { throw Missing() }
                    body = Self.entryBody(of: original, relative, type: .playlist, in: version)
                } else {
                    guard let stored = try await self.read(relative, of: version)?.bytes else { throw Missing() }
                    body = stored
                }
                let object = CachedObject(growing: body, version: version.version, relative: relative, entry: rewritten)
                self.growing.put(key, object)
                return object
            }
        } catch is Missing {
            return nil
        }
    }

    /// What an index file (a playlist, a storyboard) reached without a version says: its own
    /// bytes with every URI naming `version`.
    static func entryBody(of original: CachedObject, _ relative: String, type: MediaType, in version: PublishedVersion) -> ObjectBytes {
        let folder = relative.split(separator: "/").dropLast().joined(separator: "/")
        let rewrite = type == .webVTT ? PlaylistRewriter.rewriteStoryboard : PlaylistRewriter.rewrite
        return ObjectBytes(copied: rewrite(original.body, folder, version.version))
    }

    static func objectName(_ version: PublishedVersion, _ relative: String) -> String {
        "\(version.asset.rawValue)/\(version.version)/\(relative)"
    }

    /// L1's key for the object `name` (``objectName(_:_:)``): an entry playlist, rewritten to name
    /// its version, is kept apart from the version's own file.
    static func cacheKey(_ name: String, rewritten: Bool) -> String {
        rewritten ? name + "~entry" : name
    }

    func counted(l1Hit: Bool) {
        if l1Hit {
            counters.withLockedValue { $0.l1Hits += 1 }
            metrics.l1Hit.increment()
        } else {
            metrics.l1Miss.increment()
        }
    }

    /// One file's bytes from L2, else from the store (then offered to L2 in the background).
    private func loadBytes(_ name: String, version: PublishedVersion, relative: String) async throws -> ObjectBytes? {
        if let shared {
            if let hit = await shared.get(name) {
                counters.withLockedValue { $0.l2Hits += 1 }
                metrics.l2Hit.increment()
                return hit
            }
            metrics.l2Miss.increment()
        }
        guard let stored = try await read(relative, of: version)?.bytes else { return nil }
        if let shared { Task { await shared.put(name, stored.buffer) } }
        return stored
    }

    /// The largest file of a version the origin reads into memory.
    static let maximumObjectBytes = 512 << 20

    /// Reads a file of a published version, whole or a range, from the store (one read, or one
    /// GET), into memory whose pages may be lent (``PageMappedMemory``); nil when it does not exist.
    func read(_ relative: String, of version: PublishedVersion, range: ClosedRange<Int>? = nil) async throws -> StoredRead<ObjectBytes>? {
        let stored = try await store.read(relative, of: version, range: range, maximumBytes: Self.maximumObjectBytes) { size, fill in
            try PageMappedMemory.make(size: size, fill: fill)
        }
        guard let stored else { return nil }
        counters.withLockedValue { $0.storeReads += 1 }
        metrics.storeReads.increment()
        return stored
    }
}

/// One object as L1 keeps it: the bytes, and what the responses need, computed once.
public struct CachedObject: Sendable {
    let body: ByteBuffer
    /// The body's pages may be lent to the kernel (``ObjectBytes``).
    let lendsBody: Bool
    /// Playlists also keep their gzip form.
    let gzipped: ByteBuffer?
    let eTag: String
    let gzipETag: String
    /// Seconds since 1970: the version's publish time.
    let lastModified: Int
    let lastModifiedText: String
    /// `Content-Length` of the whole body.
    let sizeText: String
    /// `Cache-Control` at a versioned URL and at a version-less one.
    let cacheControl: (versioned: String, unversioned: String)
    /// A growing playlist: only its ETag validates a copy (it may change twice within the second
    /// its `Last-Modified` names).
    let isGrowing: Bool
    /// The encoded head of the plain 200 answer for the whole object, at a versioned URL and at a
    /// version-less one (they differ in `Cache-Control`).
    let wholeHeads: (versioned: ByteBuffer, unversioned: ByteBuffer)

    /// - Parameter content: what tells this object's bytes from others at the same name (a growing
    ///   playlist's); nil for a file of a whole version, which never changes.
    init(
        body bytes: ObjectBytes, type: MediaType, version: String, relative: String, entry: Bool,
        cacheControl: (versioned: String, unversioned: String), content: String? = nil, lastModified: Int? = nil
    ) {
        let body = bytes.buffer
        self.body = body
        lendsBody = bytes.lendable
        gzipped = type == .playlist ? Gzip.compress(body.readableBytesView).map { ByteBuffer(bytes: $0) } : nil
        eTag = Self.eTag(version: version, relative: relative, entry: entry, content: content)
        gzipETag = Self.eTag(version: version, relative: relative, entry: entry, content: content, gzip: true)
        self.lastModified = lastModified ?? HTTPSemantics.publishTime(ofVersion: version) ?? 0
        lastModifiedText = HTTPSemantics.httpDate(self.lastModified)
        sizeText = String(body.readableBytes)
        self.cacheControl = cacheControl
        isGrowing = content != nil
        wholeHeads = (
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl.versioned, lastModified: lastModifiedText, eTag: eTag, size: sizeText),
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl.unversioned, lastModified: lastModifiedText, eTag: eTag, size: sizeText)
        )
    }

    /// A playlist of a growing version: a second's `max-age` wherever it is asked for (it changes
    /// as segments are sealed), an ETag of its bytes, modified now.
    init(growing bytes: ObjectBytes, version: String, relative: String, entry: Bool) {
        self.init(
            body: bytes, type: .playlist, version: version, relative: relative, entry: entry,
            cacheControl: (Self.growingCacheControl, Self.growingCacheControl), content: String(fnv1a(bytes.buffer.readableBytesView), radix: 16),
            lastModified: Int(Date().timeIntervalSince1970)
        )
    }

    /// What a growing playlist may be kept for, by a player or a CDN.
    static let growingCacheControl = "public, max-age=1"

    /// A file's strong ETag: a whole version never changes, so (version, name) identifies the
    /// bytes, and it is known without them; a growing playlist adds its `content` tag.
    static func eTag(version: String, relative: String, entry: Bool = false, content: String? = nil, gzip: Bool = false) -> String {
        "\"\(version)/\(relative)\(entry ? "~entry" : "")\(content.map { "@" + $0 } ?? "")\(gzip ? "+gzip" : "")\""
    }

    /// What the object costs L1: its bytes and a little bookkeeping.
    var cost: Int { body.readableBytes + (gzipped?.readableBytes ?? 0) + wholeHeads.versioned.readableBytes + wholeHeads.unversioned.readableBytes + 256 }
}
