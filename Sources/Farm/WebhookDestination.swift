import AsyncHTTPClient
import Foundation
import Jobs
import NIOPosix

/// Where one webhook delivery attempt goes: the callback URL's host resolved once, every address it
/// resolves to judged by the policy, and a client that connects to exactly the address judged.
///
/// Resolving once and pinning the connection to the result is what makes the check hold: a name
/// that resolves to a public address when checked and to 127.0.0.1 when connected (DNS rebinding)
/// never reaches 127.0.0.1.
struct WebhookDestination: Sendable {
    let url: CallbackURL
    /// The address connected to.
    let address: IPAddress

    enum Failure: Error, Sendable {
        /// Not a destination webhooks may go to; final.
        case refused(String)
        /// The name did not resolve; worth another try.
        case unresolved(String)
    }

    /// Parses, resolves and judges `text`. Every address must pass (unless the operator allowed the
    /// host by name): a name with one private address among public ones is refused, since which one
    /// a client picks is not ours to predict.
    static func resolve(
        _ text: String, policy: OutboundAddressPolicy, threadPool: NIOThreadPool = .singleton
    ) async throws(Failure) -> WebhookDestination {
        let url: CallbackURL
        do { url = try CallbackURL(text) } catch { throw .refused("the callback URL \(error.reason)") }
        switch url.host {
        case .address(let address):
            if case .refused(let why) = policy.judge(address) { throw .refused(why) }
            return WebhookDestination(url: url, address: address)
        case .name(let name):
            let addresses: [IPAddress]
            do {
                // getaddrinfo blocks: on a thread-pool thread, never an event loop or Swift's pool.
                addresses = try await threadPool.runIfActive { try lookUp(name) }
            } catch {
                throw .unresolved("\(name): \(error)")
            }
            guard let first = addresses.first else { throw .unresolved("\(name): no addresses") }
            if !policy.allowsHost(name) {
                for address in addresses {
                    if case .refused(let why) = policy.judge(address) { throw .refused("\(name) resolves to \(address): \(why)") }
                }
            }
            return WebhookDestination(url: url, address: first)
        }
    }

    /// A client for this destination: no redirects (a redirect could lead anywhere), and the host
    /// pinned to the checked address. The name is still what TLS (SNI, certificate) and the Host
    /// header see.
    func clientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10))
        )
        configuration.dnsOverride = [url.clientHost: address.description]
        // Tracing on, AsyncHTTPClient's client span (under the job's) sends `traceparent`: the
        // receiver may continue the job's trace.
        return configuration
    }

    struct LookupError: Error, CustomStringConvertible {
        let description: String
    }

    /// The addresses `getaddrinfo` gives for `name`, in its order, without repeats.
    static func lookUp(_ name: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &list)
        guard status == 0 else {
            throw LookupError(description: status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var node = list
        while let entry = node?.pointee {
            node = entry.ai_next
            guard let socketAddress = entry.ai_addr else { continue }
            let bytes: [UInt8]
            switch entry.ai_family {
            case AF_INET:
                bytes = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                }
            case AF_INET6:
                bytes = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                }
            default: continue
            }
            if let address = IPAddress(bytes: bytes), !addresses.contains(address) { addresses.append(address) }
        }
        return addresses
    }
}
