#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is installed at
# /usr/bin/chromium, installing the chromium package with apt-get when it is
# not. identity's end-to-end browser test drives it (through chromedp).
set -euo pipefail

chromium=/usr/bin/chromium

if [[ -x $chromium ]]; then
	exit 0
fi

echo "Chromium not found at $chromium; installing it with apt-get" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
[[ -x $chromium ]] || { echo "Chromium is still missing after apt-get install chromium" >&2; exit 1; }
