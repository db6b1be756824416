import CZlib

/// gzip (RFC 1952) through zlib, for playlists and the console's pages: text, small and
/// repetitive, and a player polling them saves most of their bytes.
package enum Gzip {
    /// The gzip form of `bytes`, or nil when zlib fails (the identity form is served instead).
    package static func compress(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        var input = Array(bytes)
        var stream = z_stream()
        // 15 window bits + 16 selects the gzip wrapper; level 6 is zlib's default trade-off.
        guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count))) + 32
        var output = [UInt8](repeating: 0, count: bound)
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }
}
