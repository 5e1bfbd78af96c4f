#!/bin/sh
# Installs the Debian packages the tests talk to (real peers, never mocks).
# Runs apt-get only for what is missing, as root or through sudo; without either it says
# what is missing and the interop tests that need it skip (outside CI) or fail (in CI).
set -eu
PACKAGES="kamailio kamailio-presence-modules kamailio-xml-modules kamailio-tls-modules
kamailio-sqlite-modules baresip linphone-cli sip-tester coturn dnsmasq-base iproute2
sqlite3 sox util-linux systemd"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-deps: not root and no sudo; missing packages:$missing" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
# Debian starts these services on install; the tests run their own instances on loopback.
for s in kamailio coturn; do
    $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
done
