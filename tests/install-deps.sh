#!/bin/sh
# Installs the Debian packages the tests talk to (real peers, never mocks).
# Runs apt-get only for what is missing, as root or through sudo; without either it says
# what is missing and the interop tests that need it skip (outside CI) or fail (in CI).
#
# What uses what (tests/peers/):
#   kamailio + -tls/-sqlite/-presence/-xml modules  registrar, proxy, presence, XCAP, MSRP relay
#                                                   (kamcmd, from kamailio, reads its state)
#   baresip, linphone-cli                           independent user agents
#   sip-tester                                      sipp scenarios
#   dnsmasq-base, coturn                            DNS (NAPTR/SRV/A) and STUN/TURN
#   sqlite3                                         Kamailio's subscriber table (debugging)
#   sox                                             audio files for tone tests
#   coreutils                                       timeout and stdbuf bound and unbuffer peers
#   xvfb, x11vnc, x11-xserver-utils                 a VNC server on a virtual display (xsetroot
#                                                   paints it) for screen sharing
#   chromium                                        the web page's tests (tests/web, headless,
#                                                   driven by Playwright: never a downloaded browser)
set -eu
PACKAGES="kamailio kamailio-presence-modules kamailio-xml-modules kamailio-tls-modules
kamailio-sqlite-modules baresip linphone-cli sip-tester coturn dnsmasq-base iproute2
sqlite3 sox coreutils util-linux systemd xvfb x11vnc x11-xserver-utils chromium"

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

# Debian starts kamailio and coturn on install; the tests run their own instances on loopback.
# A policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d from starting them.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
cleanup() { [ -n "$own_policy" ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
# Where a service manager runs, keep them from starting at boot too.
for s in kamailio coturn; do
    $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || $SUDO service "$s" stop >/dev/null 2>&1 || true
done
