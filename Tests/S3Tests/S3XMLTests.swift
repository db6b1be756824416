import S3
import Testing

@Suite("S3's XML answers, read strictly")
struct S3XMLTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("a ListBucketResult page: objects, prefixes, the continuation token, url-encoded keys")
    func listing() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>b</Name><Prefix>a%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType>
              <IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;en</NextContinuationToken>
              <Contents><Key>a/one+two%26.ts</Key><LastModified>2026-12-03T10:00:00.000Z</LastModified><ETag>"abc"</ETag><Size>12</Size></Contents>
              <Contents><Key>a/%C3%BC</Key><Size>0</Size></Contents>
              <CommonPrefixes><Prefix>a/v1/</Prefix></CommonPrefixes>
            </ListBucketResult>
            """
        let list = try S3ObjectList.parse(bytes(xml))
        #expect(list.objects.map(\.key) == ["a/one two&.ts", "a/ü"])
        #expect(list.objects.map(\.size) == [12, 0])
        #expect(list.objects.first?.eTag == "\"abc\"")
        #expect(list.commonPrefixes == ["a/v1/"])
        #expect(list.isTruncated)
        #expect(list.nextContinuationToken == "tok&en")
    }

    @Test("keys are taken as they are without EncodingType")
    func plainKeys() throws {
        let list = try S3ObjectList.parse(bytes("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b%20</Key><Size>1</Size></Contents></ListBucketResult>"))
        #expect(list.objects.map(\.key) == ["a+b%20"])
        #expect(list.nextContinuationToken == nil)
    }

    @Test("refused: oversized, malformed, DOCTYPE and entities, too deep, wrong root, missing or bad fields")
    func refusals() {
        #expect(throws: S3XMLError.tooLarge(bytes: 11, limit: 10)) { try S3XMLDocument.parse(bytes("<a>xxxx</a>"), maxBytes: 10) }
        #expect(throws: S3XMLError.self) { try S3XMLDocument.parse(bytes("<a><b></a>")) }
        #expect(throws: S3XMLError.self) { try S3XMLDocument.parse(bytes("")) }
        #expect(throws: S3XMLError.self) { try S3XMLDocument.parse(bytes("<a/><b/>")) }
        #expect(throws: S3XMLError.declarationRefused) {
            try S3XMLDocument.parse(bytes("<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xxxxxxxx\">]><a>&x;</a>"))
        }
        #expect(throws: S3XMLError.declarationRefused) { try S3XMLDocument.parse(bytes("<!doctype a SYSTEM \"file:///etc/passwd\"><a/>")) }
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        #expect(throws: S3XMLError.tooDeep(limit: S3XMLDocument.defaultMaxDepth)) { try S3XMLDocument.parse(bytes(deep)) }
        #expect(throws: S3XMLError.tooManyElements(limit: 3)) { try S3XMLDocument.parse(bytes("<a><b/><b/><b/></a>"), maxElements: 3) }
        #expect(throws: S3XMLError.unexpectedRoot(expected: "ListBucketResult", found: "Error")) { try S3ObjectList.parse(bytes("<Error/>")) }
        #expect(throws: S3XMLError.missing(element: "Key", in: "Contents")) {
            try S3ObjectList.parse(bytes("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"))
        }
        #expect(throws: S3XMLError.invalid(element: "Size", value: "-1")) {
            try S3ObjectList.parse(bytes("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>"))
        }
        #expect(throws: S3XMLError.missing(element: "NextContinuationToken", in: "ListBucketResult")) {
            try S3ObjectList.parse(bytes("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"))
        }
    }

    /// fuzz/crashes/s3-xml/pi-target-not-utf8 and xml-declaration-without-version: FoundationXML
    /// traps on a processing instruction whose target is not UTF-8, and on `<?xml?>`, so no `<?`
    /// ever reaches it.
    @Test("not UTF-8, or a processing instruction, or a declaration of another encoding: refused before the parser")
    func refusedBeforeTheParser() throws {
        #expect(throws: S3XMLError.notUTF8) { try S3XMLDocument.parse([0x3C, 0x61, 0x3E, 0x3C, 0x3F, 0x70, 0xFF, 0x20, 0x78, 0x3F, 0x3E, 0x3C, 0x2F, 0x61, 0x3E]) }
        #expect(throws: S3XMLError.processingInstructionRefused) { try S3XMLDocument.parse(bytes("<a><?pi data?></a>")) }
        #expect(throws: S3XMLError.processingInstructionRefused) { try S3XMLDocument.parse(bytes("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>")) }
        #expect(throws: S3XMLError.processingInstructionRefused) { try S3XMLDocument.parse(bytes("<a/><?xml version=\"1.0\"?>")) }
        #expect(try S3XMLDocument.parse(bytes("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a/>")).name == "a")
        #expect(throws: S3XMLError.self) { try S3XMLDocument.parse(bytes("<?xml?><x")) }
        #expect(try S3XMLDocument.parse(bytes("<?xml?><a/>")).name == "a")
        #expect(try S3XMLDocument.parse([0xEF, 0xBB, 0xBF] + bytes("<?xml version='1.0'?><a>ü</a>")).text == "ü")
    }

    @Test("multipart answers, and an Error inside a 200 CompleteMultipartUpload")
    func multipart() throws {
        #expect(try S3MultipartAnswers.uploadID(bytes("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u-1</UploadId></InitiateMultipartUploadResult>")) == "u-1")
        #expect(throws: S3XMLError.missing(element: "UploadId", in: "InitiateMultipartUploadResult")) {
            try S3MultipartAnswers.uploadID(bytes("<InitiateMultipartUploadResult/>"))
        }
        #expect(try S3MultipartAnswers.completed(bytes("<CompleteMultipartUploadResult><ETag>\"e-2\"</ETag></CompleteMultipartUploadResult>")) == .success("\"e-2\""))
        let failed = try S3MultipartAnswers.completed(bytes("<Error><Code>InternalError</Code><Message>try again</Message><RequestId>r</RequestId></Error>"))
        #expect(failed == .failure(S3ErrorBody(code: "InternalError", message: "try again", requestID: "r")))
        #expect(S3MultipartAnswers.completionBody([S3CompletedPart(partNumber: 1, eTag: "\"a&b\"")])
            == "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag></Part></CompleteMultipartUpload>")
    }

    @Test("an Error body: code, message, request id; nothing for an empty body")
    func errorBody() throws {
        let error = try S3ErrorBody.parse(bytes("<?xml version=\"1.0\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><RequestId>42</RequestId></Error>"))
        #expect(error == S3ErrorBody(code: "NoSuchKey", message: "The specified key does not exist.", requestID: "42"))
        #expect(try S3ErrorBody.parse(bytes("  \n")) == nil)
    }
}
