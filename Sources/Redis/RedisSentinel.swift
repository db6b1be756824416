/// Finding a service's primary through Redis Sentinel.
enum RedisSentinel {
    /// Asks the sentinels, in order, `SENTINEL get-master-addr-by-name service`; the first answer
    /// wins. Throws ``RedisError/connect(endpoint:reason:)`` naming what each sentinel said when none
    /// knows the primary, so a caller retrying connect failures retries this too.
    static func primary(of service: String, sentinels: [RedisURL.Address], timeout: Double, url: RedisURL) throws(RedisError) -> RedisURL.Address {
        var reasons: [String] = []
        for sentinel in sentinels {
            do {
                // Sentinels are asked without the primary's credentials and briefly: a dead one must
                // not hold up the next.
                let connection = try RedisConnection(url: RedisURL(endpoint: .tcp(host: sentinel.host, port: sentinel.port)), timeout: min(timeout, 1))
                let reply = try connection.send(["SENTINEL", "get-master-addr-by-name", service])
                guard let parts = reply.array, parts.count == 2, let host = parts[0].text, let port = parts[1].int.map({ Int($0) }) else {
                    reasons.append("\(sentinel) does not know '\(service)'")
                    continue
                }
                return RedisURL.Address(host: host, port: port)
            } catch {
                reasons.append("\(sentinel): \(error.description)")
            }
        }
        throw .connect(endpoint: url.description, reason: "no sentinel named a primary: " + reasons.joined(separator: "; "))
    }
}
