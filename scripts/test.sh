#!/usr/bin/env bash
# The whole test suite, from a fresh clone, with nothing installed by hand:
# whatever the tests need beyond the machine image is installed here.
# `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests drive as a partner would (openssl and curl: the by-hand
# walk-through and the SM2 interoperability checks).
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
# Headless Chromium and ChromeDriver: the web interface's browser tests.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# A CJK font, so the screenshots the browser test takes show Chinese.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
