#!/usr/bin/env bash
# Issue 34's slow checks: the release bundle and the wheel on machines that never saw the build. Run it before calling
# a change to packaging done (the test command runs only package.sh's fast checks). Needs root (or sudo) for
# debootstrap and chroot, and Debian's mirror and PyPI. About 10 minutes (the first run also makes the roots).
#
#   scripts/check_install.sh                         # Debian 13 (trixie) and 12 (bookworm)
#   CHECK_INSTALL_RELEASES=bookworm scripts/check_install.sh
#
# 1. scripts/package.sh builds the tarball and the wheel; `auditwheel show` must find the wheel consistent with the tag
#    it claims.
# 2. For each release, a fresh minimal Debian root (debootstrap --variant=minbase, plus python3-venv; kept as a tar in
#    .build/install-check/roots and unpacked anew every run): no Swift, no compiler, no oneDNN, OpenBLAS or libcurl.
#    Inside it (chroot): the tarball's binary and the wheel's `megatron-bert` (pip-installed into a venv) run
#    scripts/install_check_commands.sh — info, embed (fp32 and int8), similarity, fill-mask, tokenize on the real
#    MiniLM weights and a fixture model — with outputs byte-identical to the build tree's binary; megatron_bert.Model
#    gives the same values as it does over the build tree's binary; `serve` from the wheel answers the openai client
#    with the same vectors as the build tree's `serve`.
#    The oldest release: the wheel's tag names the oldest glibc it runs on (manylinux_2_35: glibc 2.35); Debian 12 is
#    the oldest Debian release with that glibc (2.36; Debian 11 has 2.31), Debian 13 the current one.
# 3. The Ray test of the workers (integrations/python/tests/test_ray.py) against the installed wheel: no
#    MEGATRON_BERT_BINARY, no binary= argument; the workers find the wheel's binary.
# 4. The Containerfile, built with podman and run (see there) where podman is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD
read -r -a releases <<< "${CHECK_INSTALL_RELEASES:-trixie bookworm}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
work=.build/install-check
mkdir -p "$work/roots"

scripts/package.sh
version=$(.build/release/megatron-bert --version)
tarball=dist/megatron-bert-$version-linux-x86_64.tar.gz
wheel=$(ls dist/megatron_bert-"$version"-py3-none-manylinux_*_x86_64.whl)
tag=$(basename "$wheel" .whl | sed 's/.*-py3-none-//')

# A venv on this machine with the wheel installed: auditwheel, the reference's Python side, the Ray test.
venv=$work/venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel[numpy]" openai auditwheel 'ray[data]>=2.9' pytest
"$venv/bin/auditwheel" show "$wheel" | tee "$work/auditwheel.txt"
tr '\n' ' ' < "$work/auditwheel.txt" | grep -q "consistent with the following platform tag: \"$tag\"" || {
  echo "auditwheel does not find $(basename "$wheel") consistent with $tag" >&2; exit 1; }

# What every root gets: the packages, the models, the scripts.
stage=$work/stage
rm -rf "$stage" && mkdir -p "$stage/models" "$stage/build-out"
minilm=$(scripts/minilm.sh)
cp -r "$minilm" "$stage/models/minilm"
cp -r Tests/MegatronBERTTests/Fixtures/models/megatron-ForMaskedLM "$stage/models/tiny-mlm"
printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' $(seq -f 'Word%g' 5 49) > "$stage/models/vocab.txt"
cp "$tarball" "$stage/megatron-bert.tar.gz"
cp "$wheel" "$stage/"
cp scripts/check_install_inside.sh scripts/install_check_api.py "$stage/"
cp scripts/install_check_commands.sh "$stage/commands.sh"

# The reference: the build tree's binary, on this machine.
(
  cd "$stage"
  out=build-out
  . ./commands.sh
  run_commands "$root_dir/.build/release/megatron-bert" build
  MEGATRON_BERT_BINARY="$root_dir/.build/release/megatron-bert" "$root_dir/$venv/bin/python" install_check_api.py api models > build-out/build-api.json
  "$root_dir/.build/release/megatron-bert" serve --model models/minilm --port 18301 --quiet > build-out/serve.log 2>&1 &
  server=$!
  "$root_dir/$venv/bin/python" install_check_api.py openai 18301 > build-out/build-openai.json || { kill $server; exit 1; }
  kill -TERM $server && wait $server || true
)

failures=0
for release in "${releases[@]}"; do
  base=$work/roots/$release.tar
  if [ ! -f "$base" ]; then
    echo "making a minimal Debian $release root (debootstrap, once) …" >&2
    $sudo rm -rf "$work/roots/$release"
    $sudo debootstrap --variant=minbase --include=python3,python3-venv "$release" "$work/roots/$release" http://deb.debian.org/debian >&2
    $sudo tar -C "$work/roots/$release" -cf "$base.partial" . && mv "$base.partial" "$base"
    $sudo rm -rf "$work/roots/$release"
  fi
  root=$work/roots/$release-check
  $sudo rm -rf "$root" && mkdir -p "$root" && $sudo tar -C "$root" -xf "$base"
  cp -r "$stage" "$root/check"
  rm -rf "$root/check/build-out"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  $sudo mount -t proc proc "$root/proc"
  $sudo mount --bind /dev "$root/dev"
  # This machine's way to PyPI (a certificate authority of its own, a mirror, a proxy) goes in with the network.
  pass=()
  for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy; do
    [ -n "${!name:-}" ] && pass+=("$name=${!name}")
  done
  cert=${PIP_CERT:-${SSL_CERT_FILE:-$(python3 -m pip config get global.cert 2>/dev/null || true)}}
  if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" "$root/check/host-ca.crt" && pass+=(PIP_CERT=/check/host-ca.crt); fi
  status=0
  $sudo env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 SERVE_PORT=18302 "${pass[@]}" \
    "$(PATH=$PATH:/usr/sbin:/sbin command -v chroot)" "$root" /bin/sh /check/check_install_inside.sh || status=$?
  $sudo umount "$root/dev" "$root/proc"
  if [ $status -ne 0 ] || [ ! -f "$root/check/out/finished" ]; then
    echo "Debian $release: the checks inside the root failed (status $status)" >&2
    failures=$((failures + 1))
    continue
  fi
  cat "$root/check/out/system.txt"
  for file in "$stage"/build-out/build-*; do
    name=${file##*/build-}
    for kind in tarball wheel; do
      [ "$kind" = tarball ] && { [ "$name" = api.json ] || [ "$name" = openai.json ]; } && continue
      if cmp -s "$file" "$root/check/out/$kind-$name"; then
        echo "  $release $kind $name: identical"
      else
        echo "  $release $kind $name: DIFFERS from the build tree's" >&2
        diff <(head -c 2000 "$file") <(head -c 2000 "$root/check/out/$kind-$name") >&2 || true
        failures=$((failures + 1))
      fi
    done
  done
done

# The Ray workers find the installed wheel's binary by themselves.
(
  unset MEGATRON_BERT_BINARY
  export MEGATRON_BERT_MINILM="$minilm"
  cd "$work"  # not the source tree: the tests import the installed package
  "$root_dir/$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$root_dir/integrations/python/tests" \
    "$root_dir/integrations/python/tests/test_ray.py"
) || failures=$((failures + 1))

# The container recipe: built with podman from the bookworm root above (this machine reaches no image registry, so
# the runtime stage's base is that root, imported, and the bundle the prebuilt one); then run. Where podman cannot
# start containers (a sandbox that refuses setrlimit or cgroups), the image's own file system, user, environment,
# entry point and health check run in a chroot instead, on another port (as `-p` would map it).
image_size="not built (no podman)"
if command -v podman >/dev/null 2>&1; then
  image=localhost/megatron-bert:check
  podman import "$work/roots/bookworm.tar" localhost/megatron-bert-check/debian:bookworm >/dev/null
  podman build --quiet --isolation chroot --format docker -f Containerfile --build-arg BUNDLE=prebuilt \
    --build-arg RUNTIME_IMAGE=localhost/megatron-bert-check/debian:bookworm -t "$image" . >/dev/null
  image_size=$(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')
  podman image inspect "$image" > "$work/image.json"
  if podman run --rm "$image" --version > "$work/container-version.txt" 2> "$work/container-run.log"; then
    podman run -d --name megatron-bert-check -p 18303:80 -v "$root_dir/$stage/models:/data/models:ro" "$image" \
      serve --model /data/models/minilm >/dev/null
    "$venv/bin/python" scripts/install_check_api.py openai 18303 > "$work/container-openai.json" || failures=$((failures + 1))
    podman healthcheck run megatron-bert-check || { echo "the container's health check failed" >&2; failures=$((failures + 1)); }
    [ "$(podman exec megatron-bert-check id -u)" = 10001 ] || { echo "the container's process is not user 10001" >&2; failures=$((failures + 1)); }
    podman rm -f megatron-bert-check >/dev/null
  else
    echo "podman cannot start containers here ($(tail -1 "$work/container-run.log")): running the image's file system in a chroot"
    rootfs=$work/image-rootfs
    $sudo rm -rf "$rootfs" && mkdir -p "$rootfs"
    container=$(podman create "$image")
    podman export "$container" | $sudo tar -C "$rootfs" -xf -
    podman rm "$container" >/dev/null
    mkdir -p "$rootfs/data/models" && cp -r "$stage/models/minilm" "$rootfs/data/models/"
    $sudo mount -t proc proc "$rootfs/proc" && $sudo mount --bind /dev "$rootfs/dev"
    # The image's configuration: user, environment (PORT moved as -p would), entry point, health check.
    mapfile -t config < <("$venv/bin/python" - "$work/image.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))[0]["Config"]
print(config["User"])
print(" ".join(e for e in config["Env"] if not e.startswith("PORT=")) + " PORT=18303")
print(json.dumps(config["Entrypoint"]))
print(json.dumps(config["Healthcheck"]["Test"][1:]))
PY
)
    user=$(awk -F: -v u="${config[0]}" '$1 == u {print $3 ":" $4}' "$rootfs/etc/passwd")
    chroot_bin=$(PATH=$PATH:/usr/sbin:/sbin command -v chroot)
    read -r -a environment <<< "${config[1]}"
    entrypoint=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0])' "${config[2]}")
    $sudo env -i "${environment[@]}" "$chroot_bin" --userspec="$user" "$rootfs" \
      /bin/sh -c "cd /data && exec $entrypoint serve --model /data/models/minilm" > "$work/image-serve.log" 2>&1 &
    server=$!
    "$venv/bin/python" scripts/install_check_api.py openai 18303 > "$work/container-openai.json" || failures=$((failures + 1))
    mapfile -t health < <(python3 -c 'import json,sys; print(*json.loads(sys.argv[1]), sep="\n")' "${config[3]}")
    if $sudo env -i "${environment[@]}" "$chroot_bin" --userspec="$user" "$rootfs" "${health[@]}"; then
      echo "  image health check: healthy"
    else
      echo "the image's health check failed" >&2; failures=$((failures + 1))
    fi
    owner=$(ps -o uid= -p "$(pgrep -f "megatron-bert serve --model /data/models/minilm" | head -1)" | tr -d ' ')
    [ "$owner" = "${user%%:*}" ] && [ "$owner" != 0 ] || { echo "serve ran as uid $owner, not the image's user" >&2; failures=$((failures + 1)); }
    echo "  image user ${config[0]} (uid $owner), entry point $entrypoint"
    kill -TERM $server 2>/dev/null; wait $server || true
    $sudo umount "$rootfs/dev" "$rootfs/proc"
  fi
  if cmp -s "$stage/build-out/build-openai.json" "$work/container-openai.json"; then
    echo "  container openai.json: identical"
  else
    echo "  container openai.json: DIFFERS from the build tree's" >&2; failures=$((failures + 1))
  fi
  podman rmi -f "$image" localhost/megatron-bert-check/debian:bookworm >/dev/null
fi

echo "sizes: tarball $(du -h "$tarball" | cut -f1), wheel $(du -h "$wheel" | cut -f1), unpacked $(du -sh .build/package/*/ | cut -f1), image $image_size"
[ $failures -eq 0 ] || { echo "$failures install checks failed" >&2; exit 1; }
echo "every install check passed: ${releases[*]}"
