import Foundation
import Testing
@testable import Vault

private func message(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}

/// A temporary directory removed when the test finishes.
private func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vault-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

private let keyBytes = (0..<32).map { UInt8($0) }
private let keyBase64 = Data(keyBytes).base64EncodedString()

@Test func loadsFromEnvironment() throws {
    let key = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": keyBase64])
    #expect(key.id == (try MasterKey(bytes: keyBytes)).id)
    #expect(key.base64EncodedKey() == keyBase64)
}

@Test func loadsFromBase64File() throws {
    try withTemporaryDirectory { dir in
        let file = dir.appendingPathComponent("master.key")
        try Data("  \(keyBase64)\n".utf8).write(to: file)
        let fromArgument = try MasterKey.load(environment: [:], keyFile: file.path)
        let fromEnvironment = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY_FILE": file.path])
        #expect(fromArgument.id == (try MasterKey(bytes: keyBytes)).id)
        #expect(fromEnvironment.id == fromArgument.id)
    }
}

@Test func loadsFromRawFile() throws {
    try withTemporaryDirectory { dir in
        let file = dir.appendingPathComponent("master.bin")
        try Data(keyBytes).write(to: file)
        #expect(try MasterKey.load(environment: [:], keyFile: file.path).id == (try MasterKey(bytes: keyBytes)).id)
    }
}

@Test func explicitKeyFileWinsOverEnvironment() throws {
    try withTemporaryDirectory { dir in
        let file = dir.appendingPathComponent("master.bin")
        try Data(keyBytes).write(to: file)
        let other = try MasterKey.generate()
        let loaded = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": other.base64EncodedKey()], keyFile: file.path)
        #expect(loaded.id == (try MasterKey(bytes: keyBytes)).id)
    }
}

@Test func missingKeyHasAClearMessage() {
    #expect(message { _ = try MasterKey.load(environment: [:]) }
        == "no master key: set STREAMGATE_MASTER_KEY (base64 of 32 bytes) or pass --master-key-file")
    #expect(message { _ = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": "  "]) }
        == "no master key: set STREAMGATE_MASTER_KEY (base64 of 32 bytes) or pass --master-key-file")
    #expect(message { _ = try Keyring.load(environment: [:]) }
        == "no master key: set STREAMGATE_MASTER_KEY (base64 of 32 bytes) or pass --master-key-file")
}

@Test func malformedAndWrongLengthKeys() throws {
    #expect(message { _ = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": "not base64!"]) }
        == "STREAMGATE_MASTER_KEY: not valid base64")
    let short = Data(keyBytes.prefix(31)).base64EncodedString()
    #expect(message { _ = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": short]) }
        == "STREAMGATE_MASTER_KEY: decodes to 31 bytes, need 32")
    #expect(message { _ = try MasterKey(base64: Data(count: 33).base64EncodedString(), source: "test") }
        == "test: decodes to 33 bytes, need 32")
    #expect(message { _ = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY": keyBase64, "STREAMGATE_MASTER_KEY_FILE": "/x"]) }
        == "both STREAMGATE_MASTER_KEY and STREAMGATE_MASTER_KEY_FILE are set; set only one")
}

@Test func badKeyFiles() throws {
    try withTemporaryDirectory { dir in
        let missing = dir.appendingPathComponent("absent.key").path
        let error = message { _ = try MasterKey.load(environment: [:], keyFile: missing) }
        #expect(error == "master key file \(missing): cannot read: No such file or directory")
        #expect(message { _ = try MasterKey.load(environment: [:], keyFile: dir.path) }
            == "master key file \(dir.path): cannot read: Is a directory")

        let garbage = dir.appendingPathComponent("garbage.key")
        try Data("hello world".utf8).write(to: garbage)
        #expect(message { _ = try MasterKey.load(environment: [:], keyFile: garbage.path) }
            == "master key file \(garbage.path): not valid base64")

        let short = dir.appendingPathComponent("short.key")
        try Data(Data(count: 16).base64EncodedString().utf8).write(to: short)
        #expect(message { _ = try MasterKey.load(environment: ["STREAMGATE_MASTER_KEY_FILE": short.path]) }
            == "master key file \(short.path): decodes to 16 bytes, need 32")
    }
}
