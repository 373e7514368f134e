#!/usr/bin/env bash
# What the browser test of `export --web` needs besides pip packages: Debian's chromium (Playwright
# drives it as it is: no `playwright install`) and onnxruntime-web from npm, installed into a cache
# folder outside the repository, from which `export --web` vendors its files.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "setup_browser: install chromium (apt-get install chromium) for the browser test" >&2
    fi
fi
if command -v npm >/dev/null; then
    cache="${HOME}/.cache/stylegan-anime-npm"
    mkdir -p "$cache"
    (cd "$cache" && npm install --silent --no-audit --no-fund onnxruntime-web@1.31.1 >/dev/null)
else
    echo "setup_browser: no npm: export --web will load onnxruntime-web from its CDN" >&2
fi
