import Testing
@testable import Gate
