#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Swift symbol names made readable by the Swift runtime's own demangler (`swift_demangle` in
/// libswiftCore), found at run time: it is not public API, and a process without it keeps raw names.
public enum SwiftDemangler {
    private typealias DemangleFunction = @convention(c) (
        UnsafePointer<CChar>?, Int, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?, UInt32
    ) -> UnsafeMutablePointer<CChar>?

    private static let function: DemangleFunction? = {
        // The running binary links libswiftCore, so the default scope finds it; a statically linked
        // standard library may not export it, hence the explicit library as a second try.
        var symbol = dlsym(nil, "swift_demangle")
        if symbol == nil, let library = dlopen("libswiftCore.so", RTLD_NOW) { symbol = dlsym(library, "swift_demangle") }
        return symbol.map { unsafeBitCast($0, to: DemangleFunction.self) }
    }()

    /// Whether the runtime's demangler was found.
    public static var isAvailable: Bool { function != nil }

    /// Whether `name` is a Swift mangled name (Swift 5+ `$s`, Swift 4 `$S`, Swift 3 `_T0`, embedded
    /// `$e`, with or without the leading underscore some platforms add).
    public static func isMangled(_ name: some StringProtocol) -> Bool {
        let whole = Substring(name)
        let bare = whole.hasPrefix("_$") ? whole.dropFirst() : whole
        return bare.hasPrefix("$s") || bare.hasPrefix("$S") || bare.hasPrefix("$e") || bare.hasPrefix("_T0")
    }

    /// The demangled name, or `name` itself when it is not Swift's or cannot be demangled.
    public static func demangle(_ name: String) -> String {
        guard isMangled(name), let function else { return name }
        let utf8 = Array(name.utf8CString)
        let demangled = utf8.withUnsafeBufferPointer { function($0.baseAddress, utf8.count - 1, nil, nil, 0) }
        guard let demangled else { return name }
        defer { free(demangled) }
        return String(cString: demangled)
    }
}
