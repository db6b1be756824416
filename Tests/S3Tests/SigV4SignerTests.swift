import Foundation
import S3
import Testing
import Vault

@Suite("SigV4 signer against AWS's published vectors")
struct SigV4SignerTests {
    private func request(_ vector: SigV4Vector) -> SigV4Signer.Request {
        let hash = vector.signBody || !vector.body.isEmpty ? Digest.hex(Digest.sha256(Array(vector.body.utf8))) : SigV4Signer.emptyPayloadHash
        return SigV4Signer.Request(
            method: vector.method, path: S3URIEncoding.encodePath(vector.path),
            query: vector.query.map { (name: $0.0, value: $0.1) }, headers: vector.headers.map { (name: $0.0, value: $0.1) }, payloadHash: hash
        )
    }

    @Test("the CRT signing test suite: canonical request, signature, Authorization", arguments: SigV4Vectors.suite)
    func suite(_ vector: SigV4Vector) {
        let credentials = S3Credentials(accessKeyID: SigV4Vectors.suiteAccessKey, secretAccessKey: SigV4Vectors.suiteSecretKey, sessionToken: vector.sessionToken)
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
        let signed = signer.sign(request(vector), at: Date(timeIntervalSince1970: SigV4Vectors.suiteTime), contentSHA256Header: vector.signBody)
        if let canonical = vector.canonicalRequest { #expect(signed.canonicalRequest == canonical) }
        #expect(signed.signature == vector.signature)
        #expect(signed.authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="))
        #expect(signed.authorization.hasSuffix("Signature=" + vector.signature))
        #expect(signed.headers.contains { $0.name == "x-amz-date" && $0.value == "20150830T123600Z" })
    }

    @Test("the suite's presigned (query) forms", arguments: SigV4Vectors.suite.filter { $0.presignedSignature != nil })
    func suitePresigned(_ vector: SigV4Vector) {
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyID: SigV4Vectors.suiteAccessKey, secretAccessKey: SigV4Vectors.suiteSecretKey), region: "us-east-1", service: "service")
        let query = signer.presignedQuery(request(vector), at: Date(timeIntervalSince1970: SigV4Vectors.suiteTime), expires: vector.presignExpires)
        #expect(query.last?.name == "X-Amz-Signature")
        #expect(query.last?.value == vector.presignedSignature)
        #expect(query.contains { $0.name == "X-Amz-Credential" && $0.value == "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request" })
    }

    @Test("the S3 documentation's examples (AKIAIOSFODNN7EXAMPLE)", arguments: SigV4Vectors.s3Examples)
    func s3Examples(_ vector: SigV4Vector) {
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyID: SigV4Vectors.s3AccessKey, secretAccessKey: SigV4Vectors.s3SecretKey), region: "us-east-1")
        let signed = signer.sign(request(vector), at: Date(timeIntervalSince1970: SigV4Vectors.s3Time))
        if let canonical = vector.canonicalRequest { #expect(signed.canonicalRequest == canonical) }
        #expect(signed.signature == vector.signature)
        #expect(signed.authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders="))
    }

    @Test("the S3 documentation's presigned GET (UNSIGNED-PAYLOAD, 86400 s)")
    func s3Presigned() {
        let vector = SigV4Vectors.s3Presigned
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyID: SigV4Vectors.s3AccessKey, secretAccessKey: SigV4Vectors.s3SecretKey), region: "us-east-1")
        var unsigned = request(vector)
        unsigned.payloadHash = SigV4Signer.unsignedPayload
        let query = signer.presignedQuery(unsigned, at: Date(timeIntervalSince1970: SigV4Vectors.s3Time), expires: vector.presignExpires)
        #expect(query.last?.value == vector.signature)
        #expect(query.map(\.name) == ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"])
    }

    @Test("the signing key of the S3 documentation's example")
    func signingKey() {
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyID: SigV4Vectors.s3AccessKey, secretAccessKey: SigV4Vectors.s3SecretKey), region: "us-east-1")
        // Same key for every request of one day: derived from the date, region and service only.
        #expect(signer.signingKey(day: "20130524") == signer.signingKey(day: "20130524"))
        #expect(signer.signingKey(day: "20130524") != signer.signingKey(day: "20130525"))
        #expect(SigV4Timestamp(Date(timeIntervalSince1970: SigV4Vectors.s3Time)).dateTime == "20130524T000000Z")
    }

    @Test("S3's URI encoding: unreserved bytes kept, everything else %XY, slashes only in paths")
    func uriEncoding() {
        #expect(S3URIEncoding.encode("a b+c/d~e") == "a%20b%2Bc%2Fd~e")
        #expect(S3URIEncoding.encodePath("/assets/v1/a b/ü.ts") == "/assets/v1/a%20b/%C3%BC.ts")
        #expect(S3URIEncoding.encodePath("/a//./../b") == "/a//./../b")
        #expect(S3URIEncoding.decode("a%20b+c", plusIsSpace: true) == "a b c")
        #expect(S3URIEncoding.decode("%E1%88%B4") == "\u{1234}")
        #expect(S3URIEncoding.decode("%zz") == nil)
        #expect(S3URIEncoding.decode("%FF") == nil)
    }
}
