/// This build's version: what `megatron-bert --version`, the server's `/info` and OpenAPI document, and the release
/// bundle's and wheel's names say. integrations/python/pyproject.toml holds the same string (scripts/package.sh
/// checks that they agree).
///
///     print(MegatronBERTVersion.current)  // "0.1.0"
public enum MegatronBERTVersion {
    public static let current = "0.1.0"
}
