#!/bin/sh
# Install the Debian packages wgpy's tests and tunnel need, if any is missing. Needs root and apt-get.
set -e
# command name : Debian package
NEEDED=""
for pair in ip:iproute2; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || NEEDED="$NEEDED ${pair#*:}"
done
[ -z "$NEEDED" ] && exit 0
echo "installing Debian packages:$NEEDED"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $NEEDED >/dev/null
