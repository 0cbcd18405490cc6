#!/usr/bin/env bash
# Makes sure Debian's oathtool is installed, installing the oathtool package
# with apt-get when it is not. identity's second factor tests compute TOTP
# codes with it: an implementation of RFC 6238 independent of identity's.
set -euo pipefail

if command -v oathtool >/dev/null 2>&1; then
	exit 0
fi

echo "oathtool not found; installing it with apt-get" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends oathtool >/dev/null
command -v oathtool >/dev/null 2>&1 || { echo "oathtool is still missing after apt-get install oathtool" >&2; exit 1; }
