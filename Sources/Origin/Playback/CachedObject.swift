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
                    let folder = relative.split(separator: "/").dropLast().joined(separator: "/")
                    body = ObjectBytes(copied: PlaylistRewriter.rewrite(original.body, directory: folder, version: version.version))
                } else {
                    guard let loaded = try await self.loadBytes(name, version: version, relative: relative) else { throw Missing() }
                    body = loaded
                }
                let object = CachedObject(
                    body: body, type: type, version: version.version, relative: relative, entry: rewritten, cacheControl: self.cacheControl(versioned:)
                )
                self.cache.put(key, object, cost: object.cost)
                return object
            }
        } catch is Missing {
            return nil
        }
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
    /// The encoded head of the plain 200 answer for the whole object, at a versioned URL and at a
    /// version-less one (they differ in `Cache-Control`).
    let wholeHeads: (versioned: ByteBuffer, unversioned: ByteBuffer)

    init(body bytes: ObjectBytes, type: MediaType, version: String, relative: String, entry: Bool, cacheControl: (_ versioned: Bool) -> String) {
        let body = bytes.buffer
        self.body = body
        lendsBody = bytes.lendable
        gzipped = type == .playlist ? Gzip.compress(body.readableBytesView).map { ByteBuffer(bytes: $0) } : nil
        eTag = Self.eTag(version: version, relative: relative, entry: entry)
        gzipETag = Self.eTag(version: version, relative: relative, entry: entry, gzip: true)
        lastModified = HTTPSemantics.publishTime(ofVersion: version) ?? 0
        lastModifiedText = HTTPSemantics.httpDate(lastModified)
        sizeText = String(body.readableBytes)
        wholeHeads = (
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl(true), lastModified: lastModifiedText, eTag: eTag, size: sizeText),
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl(false), lastModified: lastModifiedText, eTag: eTag, size: sizeText)
        )
    }

    /// A file's strong ETag: a version never changes, so (version, name) identifies the bytes,
    /// and it is known without them.
    static func eTag(version: String, relative: String, entry: Bool = false, gzip: Bool = false) -> String {
        "\"\(version)/\(relative)\(entry ? "~entry" : "")\(gzip ? "+gzip" : "")\""
    }

    /// What the object costs L1: its bytes and a little bookkeeping.
    var cost: Int { body.readableBytes + (gzipped?.readableBytes ?? 0) + wholeHeads.versioned.readableBytes + wholeHeads.unversioned.readableBytes + 256 }
}
