import ArgumentParser
import Hummingbird
import Logging
import Origin
import Store
import Vault

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve published assets: playlists, encrypted segments and their keys."
    )

    @Option(help: "The store folder to serve.")
    var store: String

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 8080

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    func run() async throws {
        let keyring: Keyring
        let assets: AssetStore
        do {
            keyring = try Keyring.load(keyFile: masterKeyFile)
            assets = try AssetStore(readingFrom: store)
        } catch {
            throw CommandFailure(error)
        }
        var logger = Logger(label: "streamgate.serve")
        logger.logLevel = .info
        let application = buildOriginApplication(
            configuration: OriginConfiguration(host: host, port: port),
            store: assets,
            unwrapKey: { asset, keyID, stored in
                let wrapped = try WrappedKey(serialized: stored)
                guard wrapped.keyID == keyID else {
                    throw VaultError("keys/\(keyID).key of \(asset) holds key \(wrapped.keyID)")
                }
                return try keyring.unwrap(wrapped, context: asset.rawValue).bytes
            },
            logger: logger
        )
        try await application.runService()
    }
}
