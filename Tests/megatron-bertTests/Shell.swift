import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Runs a bash script with the built executable as `$MB` and the fixtures as `$FIXTURES`, and measures it the way
/// the reliability tests need: exit status (a signal shows as `signal`), output, wall time and the peak resident
/// memory of the process tree (from `wait4`: the largest of bash and every process it waited for).
enum Shell {
    struct Result: CustomStringConvertible {
        var status: Int32
        /// The signal that ended bash itself, if one did (a command's signal shows in `status` as 128 + n).
        var signal: Int32?
        var stdout: String
        var stderr: String
        var peakResidentBytes: Int
        var seconds: Double

        var description: String {
            "status \(status)\(signal.map { " signal \($0)" } ?? ""), \(peakResidentBytes >> 20) MB, \(String(format: "%.2f", seconds)) s, stderr: \(stderr.prefix(400))"
        }
    }

    static func run(_ script: String) throws -> Result {
        let directory = Scratch.path("shell")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outPath = directory + "/stdout", errPath = directory + "/stderr"
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var environment = ProcessInfo.processInfo.environment
        environment["MB"] = CLI.executable
        environment["FIXTURES"] = CLI.fixtures
        environment["ROOT"] = CLI.packageRoot
        environment["WORK"] = directory
        let arguments = ["bash", "-c", "cd \"$WORK\" && " + script]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let started = Date()
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp)
        guard spawned == 0 else { throw CocoaError(.executableLoad) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = Date().timeIntervalSince(started)
        let signal = status & 0x7f
        return Result(status: (status >> 8) & 0xff, signal: signal == 0 ? nil : signal,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                      peakResidentBytes: usage.ru_maxrss * 1024, seconds: seconds)
    }
}
