#!/bin/sh
# What the browser tests need from Debian: Chromium (Playwright drives it; its own
# browser download cannot work here) and CJK fonts (without them Chinese renders
# as empty boxes in screenshots). Installs only what is missing.
set -e
need=""
[ -x /usr/bin/chromium ] || need="$need chromium"
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need="$need fonts-noto-cjk"
[ -z "$need" ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing:$need" >&2
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $need >/dev/null
