/// Published Signature Version 4 vectors, as data.
///
/// `suite`: AWS's SigV4 test suite in its current form, the CRT signing test suite
/// (awslabs/aws-c-auth, tests/aws-signing-test-suite/v4/<name>/: request.txt, context.json,
/// header-canonical-request.txt, header-signature.txt, query-signature.txt), read from the copy in
/// smithy-lang/smithy-rs (aws/rust-runtime/aws-sigv4/aws-signing-test-suite). Every case there
/// signs for service `service` in us-east-1 at 2015-08-30T12:36:00Z with the key `AKIDEXAMPLE`.
/// Only the cases whose rules match S3's are used: the `-unnormalized` variants (S3 paths are never
/// normalised) and no double-encoding cases.
///
/// `s3Examples`: the examples of the S3 API Reference, "Signature Calculations for the
/// Authorization Header: Transferring Payload in a Single Chunk" (GET Object, PUT Object, GET
/// Bucket Lifecycle, Get Bucket (List Objects)) and "Authenticating Requests: Using Query
/// Parameters" (the presigned GET), with the documentation's key `AKIAIOSFODNN7EXAMPLE`, bucket
/// `examplebucket`, us-east-1, 2013-05-24T00:00:00Z.
struct SigV4Vector: Sendable, CustomStringConvertible {
    var name: String
    var method: String
    /// The path as the request names it, not yet encoded.
    var path: String
    var query: [(String, String)] = []
    var headers: [(String, String)]
    var body: String = ""
    /// Whether the body's hash goes in an `x-amz-content-sha256` header (the suite's `sign_body`; always for S3).
    var signBody: Bool
    var sessionToken: String? = nil
    /// The canonical request, when the source prints it.
    var canonicalRequest: String? = nil
    var signature: String
    /// The signature of the presigned (query) form, when the source gives one.
    var presignedSignature: String? = nil
    var presignExpires: Int = 3600
    var description: String { name }
}

enum SigV4Vectors {
    static let suiteAccessKey = "AKIDEXAMPLE"
    static let suiteSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    /// 2015-08-30T12:36:00Z
    static let suiteTime: Double = 1_440_938_160
    static let host = ("Host", "example.amazonaws.com")
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    static let suite: [SigV4Vector] = [
        SigV4Vector(
            name: "get-vanilla", method: "GET", path: "/", headers: [host], signBody: false,
            canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            presignedSignature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"
        ),
        SigV4Vector(
            name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [host], signBody: false,
            canonicalRequest: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            presignedSignature: "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"
        ),
        SigV4Vector(
            name: "get-vanilla-query-order-encoded", method: "GET", path: "/",
            query: [("Param-3", "Value3"), ("Param", "Value2"), ("\u{1234}", "Value1")], headers: [host], signBody: false,
            canonicalRequest: "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"
        ),
        SigV4Vector(
            name: "get-vanilla-utf8-query", method: "GET", path: "/", query: [("\u{1234}", "bar")], headers: [host], signBody: false,
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        ),
        SigV4Vector(
            name: "get-utf8", method: "GET", path: "/\u{1234}", headers: [host], signBody: false,
            canonicalRequest: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            presignedSignature: "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44"
        ),
        SigV4Vector(
            name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: [host], signBody: false,
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
            presignedSignature: "95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005"
        ),
        SigV4Vector(
            name: "get-vanilla-query-unreserved", method: "GET", path: "/",
            query: [("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")],
            headers: [host], signBody: false,
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
        SigV4Vector(
            name: "get-space-unnormalized", method: "GET", path: "/example space/", headers: [host], signBody: false,
            canonicalRequest: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        ),
        SigV4Vector(
            name: "get-slashes-unnormalized", method: "GET", path: "//example//", headers: [host], signBody: false,
            signature: "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"
        ),
        SigV4Vector(
            name: "get-vanilla-with-session-token", method: "GET", path: "/", headers: [host], signBody: false,
            sessionToken: "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
            canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\n\(emptyHash)",
            signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        ),
        SigV4Vector(
            name: "post-x-www-form-urlencoded", method: "POST", path: "/",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), host, ("Content-Length", "13")], body: "Param1=value1", signBody: true,
            canonicalRequest: """
                POST
                /

                content-length:13
                content-type:application/x-www-form-urlencoded
                host:example.amazonaws.com
                x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e
                x-amz-date:20150830T123600Z

                content-length;content-type;host;x-amz-content-sha256;x-amz-date
                9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e
                """,
            signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        ),
    ]

    static let s3AccessKey = "AKIAIOSFODNN7EXAMPLE"
    static let s3SecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    /// 2013-05-24T00:00:00Z
    static let s3Time: Double = 1_369_353_600
    static let s3Host = ("Host", "examplebucket.s3.amazonaws.com")

    static let s3Examples: [SigV4Vector] = [
        SigV4Vector(
            name: "GET Object (Range)", method: "GET", path: "/test.txt", headers: [s3Host, ("Range", "bytes=0-9")], signBody: true,
            canonicalRequest: """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """,
            signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ),
        SigV4Vector(
            name: "PUT Object", method: "PUT", path: "/test$file.text",
            headers: [s3Host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            body: "Welcome to Amazon S3.", signBody: true,
            signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        ),
        SigV4Vector(
            name: "GET Bucket Lifecycle", method: "GET", path: "/", query: [("lifecycle", "")], headers: [s3Host], signBody: true,
            signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        ),
        SigV4Vector(
            name: "Get Bucket (List Objects)", method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")], headers: [s3Host], signBody: true,
            signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ),
    ]

    /// The presigned GET of the query-parameters page: `X-Amz-Expires=86400`, payload `UNSIGNED-PAYLOAD`.
    static let s3Presigned = SigV4Vector(
        name: "presigned GET Object", method: "GET", path: "/test.txt", headers: [s3Host], signBody: false,
        signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", presignExpires: 86400
    )
}
