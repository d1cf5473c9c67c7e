#!/usr/bin/env bash
# A small Linux guest for the per-guest uplink tests and the README's two-guest recipe: Debian's kernel (vmlinuz), its
# e1000 NIC driver module and a static busybox, taken from Debian's packages with `apt-get download` and `dpkg-deb`
# (nothing is installed on the host) into DIR (default: $MACSLOT_LINUX_GUEST, else ~/.cache/macslot/linux-guest), and
# DIR/initramfs.cpio built from them: busybox's applets, the driver loaded, loopback and eth0 up, a shell on the serial
# console, and /bin/dhcp-hook for `udhcpc -s`. Downloads only what DIR lacks; the initramfs is built every time.
set -euo pipefail
dir=${1:-${MACSLOT_LINUX_GUEST:-${XDG_CACHE_HOME:-$HOME/.cache}/macslot/linux-guest}}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch_parts() {
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
}
if ! [ -s "$dir/vmlinuz" ] || ! [ -s "$dir/e1000.ko" ] || ! [ -s "$dir/busybox" ]; then
  fetch_parts
fi
# The initramfs. Without device nodes (no root needed): init mounts devtmpfs and takes the console from it.
root="$work/root"
mkdir -p "$root/bin" "$root/dev" "$root/lib" "$root/proc" "$root/sys" "$root/tmp"
cp "$dir/busybox" "$root/bin/busybox"
cp "$dir/e1000.ko" "$root/lib/e1000.ko"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
insmod /lib/e1000.ko
ip link set lo up
ip link set eth0 up
echo "guest: ready"
exec sh
INIT
# udhcpc's hook: configure the IPv4 lease it got (IPv6 addresses, formed from router advertisements, stay) and say so.
cat >"$root/bin/dhcp-hook" <<'HOOK'
#!/bin/sh
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "$router" dev "$interface"
    echo "guest: lease $ip/$mask router $router"
    ;;
esac
exit 0
HOOK
chmod 0755 "$root/init" "$root/bin/dhcp-hook"
(cd "$root" && find . | sort | "$dir/busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$dir/.initramfs.cpio.tmp"
mv -f "$dir/.initramfs.cpio.tmp" "$dir/initramfs.cpio"
