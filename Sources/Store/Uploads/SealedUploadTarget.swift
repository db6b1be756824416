import NIOCore

/// Where a sealed upload (`uploads/<id>.sealed`) is written piece by piece: as numbered parts of a
/// bucket's multipart upload, or at their offsets in a local partial file renamed when complete.
/// Nothing is visible at the upload's final name until ``complete(_:handle:partTags:size:)``.
///
/// The target stores opaque bytes the caller sealed: it never sees plaintext. Besides the parts,
/// an upload may keep one small sealed "tail" per generation (`uploads/<id>.tail-<generation>`):
/// the bytes received that do not yet make a part, so an upload continues from any machine.
///
/// Every call may be repeated after a crash: a part written again replaces itself, completing or
/// aborting twice is harmless, removing what is gone is not an error.
public protocol SealedUploadTarget: Sendable {
    /// What a job's `source` is for the finished upload: a local path, or `s3://bucket/key`.
    func source(of id: String) -> String

    /// Starts an upload: the handle its parts and completion name (a multipart upload id, or
    /// empty for a file).
    func begin(_ id: String) async throws(StoreError) -> String

    /// Writes part `number` (1-based), which starts `offset` bytes into the sealed file. Parts but
    /// the last are at least ``minimumPartSize``. Returns what completion needs of it (an ETag).
    func putPart(_ id: String, handle: String, number: Int, offset: Int, bytes: ByteBuffer) async throws(StoreError) -> String

    /// Makes the sealed file appear whole at its final name, `size` bytes, from parts
    /// 1…`partTags.count` (the tags `putPart` returned, in order).
    func complete(_ id: String, handle: String, partTags: [String], size: Int) async throws(StoreError)

    /// The size of the finished sealed upload at its final name; nil when it is not there (yet).
    func storedSize(_ id: String) async throws(StoreError) -> Int?

    /// Drops an unfinished upload's parts. Best effort: a failure is logged by the caller only.
    func abort(_ id: String, handle: String) async throws(StoreError)

    /// Stores one generation of the upload's sealed tail.
    func writeTail(_ id: String, generation: Int, bytes: ByteBuffer) async throws(StoreError)

    /// Reads one generation of the sealed tail; nil when there is none.
    func readTail(_ id: String, generation: Int, maximumBytes: Int) async throws(StoreError) -> [UInt8]?

    /// Removes one generation of the sealed tail, if it is there.
    func removeTail(_ id: String, generation: Int) async throws(StoreError)

    /// Removes every tail generation of the upload (one a request stored but could not record is
    /// left behind otherwise).
    func removeTails(_ id: String) async throws(StoreError)

    /// Removes a finished sealed upload named by its ``source(of:)`` (a cancelled job's); false
    /// when `source` is not one of this target's.
    @discardableResult
    func removeSource(_ source: String) async throws(StoreError) -> Bool
}

extension SealedUploadTarget {
    /// S3's smallest part but the last; a file has no such bound but keeps the same layout.
    public var minimumPartSize: Int { 5 << 20 }
}

/// A store that keeps sealed uploads (both backends): where the API writes them.
public protocol SealedUploadStorage: AssetStorage {
    /// The store's sealed uploads, at ``AssetStorage/uploads``.
    var sealedUploads: any SealedUploadTarget { get }
}

/// The names of an upload's objects: `<id>.sealed` and its tails. The one place the layout of
/// `uploads/` is spelled.
enum SealedUploadNames {
    static func sealed(_ id: String) -> String { id + ".sealed" }
    static func partial(_ id: String) -> String { id + ".sealed.partial" }
    static func tail(_ id: String, _ generation: Int) -> String { tailPrefix(id) + String(generation) }
    static func tailPrefix(_ id: String) -> String { id + ".tail-" }

    /// Upload ids become file and object names: the API makes them, but a target checks anyway.
    static func check(_ id: String) throws(StoreError) {
        guard StorePath.isSafeComponent(id), id.utf8.count <= 128 else {
            throw StoreError("'\(id.prefix(80))' is not an upload id (a plain name of [A-Za-z0-9._-])")
        }
    }
}
