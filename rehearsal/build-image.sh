#!/usr/bin/env bash
# Build the rehearsal host's image: a Debian bookworm machine (systemd as init, dbus, sudo, OpenSSH's server,
# Python with swapbench's dependencies in /opt/swapbench and their wheels kept in /opt/wheelhouse for an offline
# `pip install`, Debian's uvicorn for the nav sidecar), imported into podman.
#   build-image.sh TAG WHEELHOUSE   (swapbench's wheel and its dependencies' wheels, fetched by the caller:
#                                    nothing inside the chroot reaches the network but debootstrap's mirror)
# Run by rehearsal/host.py with CONTAINERS_CONF set; takes ~3 min on 2 cores, then cached by TAG.
set -euo pipefail
tag="$1" wheelhouse="$2"
work="$(mktemp -d /var/tmp/swapbench-rehearsal-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
# The mirror apt already uses (this machine reaches no other).
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
[ -n "$mirror" ] || mirror="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)"
packages=systemd,systemd-sysv,dbus,sudo,procps,iproute2,curl,python3,python3-venv,python3-uvicorn,libgomp1,libssl3,openssh-server
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
cp -r "$wheelhouse" "$root/tmp/wheelhouse"
chroot "$root" python3 -m venv /opt/swapbench
chroot "$root" env -i PATH=/usr/bin:/bin PIP_CONFIG_FILE=/dev/null /opt/swapbench/bin/pip install --quiet --disable-pip-version-check \
  --no-index --find-links /tmp/wheelhouse swapbench
# The box's own offline index: `swapbench remote --install` installs a user venv from it (no registry here).
mv "$root/tmp/wheelhouse" "$root/opt/wheelhouse" && chmod -R a+rX "$root/opt/wheelhouse"
# sshd is configured and started by the host's setup (a port of its own on loopback, fresh host keys): never
# at boot on the default port, and no host key baked into the image.
chroot "$root" systemctl disable ssh.service >/dev/null 2>&1
rm -f "$root"/etc/ssh/ssh_host_*
ln -sf /opt/swapbench/bin/swapbench "$root/usr/local/bin/swapbench"
# A machine that boots quietly in a container: no getty, no udev, nothing that wants real hardware.
for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
  systemd-modules-load.service sys-kernel-config.mount systemd-remount-fs.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo "rehearsal" >"$root/etc/hostname"
tar -C "$root" -cf "$work/rootfs.tar" .
podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' "$work/rootfs.tar" "$tag" >/dev/null
