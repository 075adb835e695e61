#!/bin/sh
# Install the Debian packages that wgpy's tests and tunnel use, if any is missing. Needs root and apt-get.
#   iproute2 (ip), iputils-ping (ping), wireguard-tools (wg, wg-quick), wireguard-go (the reference peer),
#   iperf3 and ncat (traffic), iptables (wg-quick's default-route rules), tcpdump and tshark (captures).
#   curl and dnsmasq-base (the userspace stack's tests: HTTP through the proxy, DNS inside the tunnel).
set -e
NEEDED=""
for pair in ip:iproute2 ping:iputils-ping wg:wireguard-tools wg-quick:wireguard-tools wireguard-go:wireguard-go \
            iperf3:iperf3 ncat:ncat iptables:iptables tcpdump:tcpdump tshark:tshark \
            curl:curl dnsmasq:dnsmasq-base; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || NEEDED="$NEEDED ${pair#*:}"
done
[ -z "$NEEDED" ] && exit 0
echo "installing Debian packages:$NEEDED"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get install -y -qq --no-install-recommends $NEEDED >/dev/null
