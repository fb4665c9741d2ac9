#!/usr/bin/env bash
# The release bundle and the pip wheel, for machines with no Swift toolchain (issue 34):
#
#   scripts/package.sh          # builds, then writes into dist/:
#     megatron-bert-VERSION-linux-x86_64.tar.gz           bin/megatron-bert, lib/*.so*, README.md, LICENSES/
#     megatron_bert-VERSION-py3-none-manylinux_2_NN_x86_64.whl
#
# The binary links the Swift standard library and Foundation statically (--static-swift-stdlib); every other shared
# library it loads, but those of the C and C++ runtimes every glibc system has (the manylinux policy's list), is
# copied into lib/ and found through the run path $ORIGIN/../lib — the same relative place in the tarball and in the
# wheel (megatron_bert/bin, megatron_bert/lib). The glibc the bundle needs is the newest GLIBC_ symbol version any of
# its files asks for; the wheel's tag says it.
#
# Then the fast checks (the test command runs them): ldd of the unpacked bundle resolves every library inside it or
# in the base system's list; `--version` agrees with the Python package's (scripts/test-workers.sh then installs the
# wheel and runs it). The slow checks, on fresh Debian root file systems without Swift: scripts/check_install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --package
swift build -c release --static-swift-stdlib >&2
version=$(.build/release/megatron-bert --version)
python_version=$(python3 -c 'import re,sys; print(re.search(r"^version = \"([^\"]+)\"", open(sys.argv[1]).read(), re.M).group(1))' integrations/python/pyproject.toml)
[ "$version" = "$python_version" ] || { echo "megatron-bert --version says $version, integrations/python/pyproject.toml says $python_version: make them agree" >&2; exit 1; }

name=megatron-bert-$version-linux-x86_64
stage=.build/package/$name
rm -rf .build/package && mkdir -p "$stage/bin" "$stage/lib" dist
cp .build/release/megatron-bert "$stage/bin/"
strip "$stage/bin/megatron-bert"
patchelf --set-rpath '$ORIGIN/../lib' "$stage/bin/megatron-bert"

# The base system: glibc's libraries, the dynamic loader, and GCC's C++ runtime (manylinux's allowed list).
base() {
  case "${1##*/}" in
    linux-vdso.so.*|ld-linux-x86-64.so.*|libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|libresolv.so.*|\
    libutil.so.*|libnsl.so.*|libgcc_s.so.*|libstdc++.so.*) return 0 ;;
  esac
  return 1
}
# Every library of the closure (ldd walks it), by the name the loader asks for, from the build machine, with the
# licence of the Debian package it came from.
mkdir -p "$stage/LICENSES"
ldd .build/release/megatron-bert | while read -r soname arrow path _; do
  base "$soname" && continue
  [ "$arrow" = "=>" ] && [ -f "$path" ] || { echo "ldd cannot resolve $soname on this machine" >&2; exit 1; }
  cp -L "$path" "$stage/lib/$soname"
  chmod 644 "$stage/lib/$soname"
  patchelf --set-rpath '$ORIGIN' "$stage/lib/$soname"  # their own dependencies from the bundle too
  real=$(readlink -f "$path")
  package=$( (dpkg -S "$real" || dpkg -S "/usr${real#/usr}" || dpkg -S "${real#/usr}") 2>/dev/null | head -1 | cut -d: -f1) || true
  if [ -n "$package" ] && [ -f "/usr/share/doc/$package/copyright" ]; then
    cp "/usr/share/doc/$package/copyright" "$stage/LICENSES/$package.copyright"
  fi
done
cp README.md "$stage/README.md"
swift_license=$(dirname "$(readlink -f "$(command -v swift)")")/../share/swift/LICENSE.txt  # the runtime linked in
if [ -f "$swift_license" ]; then cp "$swift_license" "$stage/LICENSES/swift.LICENSE.txt"; fi

# The fast checks: the binary and every library of the bundle load their libraries from it or the base system only.
libdir=$(cd "$stage/lib" && pwd)
unresolved=""
for file in "$stage/bin/megatron-bert" "$stage"/lib/*; do
  while read -r soname arrow path _; do
    base "$soname" && continue
    if [ "$arrow" != "=>" ] || [ "$(dirname "$(realpath -m "$path")")" != "$libdir" ]; then unresolved+=" ${file##*/}→$soname ($path)"; fi
  done < <(env -u LD_LIBRARY_PATH ldd "$file")
done
[ -z "$unresolved" ] || { echo "the bundle loads libraries from outside it:$unresolved" >&2; exit 1; }
glibc=$(for f in "$stage/bin/megatron-bert" "$stage"/lib/*; do objdump -T "$f" | grep -o 'GLIBC_2\.[0-9]*'; done | sort -uV | tail -1)
echo "bundle: $(du -sh "$stage" | cut -f1) unpacked; needs ${glibc/_/ }" >&2

tar -C .build/package -czf "dist/$name.tar.gz" "$name"
python3 scripts/build_wheel.py --bundle "$stage" --glibc "${glibc#GLIBC_}" --out dist >&2
ls -la "dist/$name.tar.gz" dist/megatron_bert-"$version"-*.whl >&2
