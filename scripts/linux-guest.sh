#!/usr/bin/env bash
# The parts of a small Linux guest for the per-guest uplink tests: Debian's kernel (vmlinuz), its e1000 NIC driver
# module and a static busybox, taken from Debian's packages with `apt-get download` and `dpkg-deb` (nothing is
# installed on the host) into DIR (default: $MACSLOT_LINUX_GUEST, else ~/.cache/macslot/linux-guest). The test builds
# the initramfs itself. Does nothing when DIR already holds all three.
set -euo pipefail
dir=${1:-${MACSLOT_LINUX_GUEST:-${XDG_CACHE_HOME:-$HOME/.cache}/macslot/linux-guest}}
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/e1000.ko" ] && [ -s "$dir/busybox" ]; then
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# _apt must be able to write the downloads.
chmod 0755 "$work"
kernel=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kernel" ]; then
  echo "linux-image-amd64 names no kernel package (run apt-get update)" >&2
  exit 3
fi
(cd "$work" && apt-get download -qq "$kernel" busybox-static >/dev/null)
mkdir "$work/k" "$work/b"
dpkg-deb --fsys-tarfile "$work/$kernel"_*.deb |
  tar -x -C "$work/k" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko'
dpkg-deb -x "$work"/busybox-static_*.deb "$work/b"
# Into place one by one, each through a temporary name in DIR, so an interrupted run leaves no partial file under its name.
for pair in "$work/k/boot/vmlinuz-*:vmlinuz" "$work/k/lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko:e1000.ko" \
  "$work/b/bin/busybox:busybox"; do
  src=$(ls ${pair%%:*})
  cp "$src" "$dir/.${pair##*:}.tmp"
  mv -f "$dir/.${pair##*:}.tmp" "$dir/${pair##*:}"
done
chmod 0755 "$dir/busybox"
echo "$kernel" >"$dir/kernel-package"
