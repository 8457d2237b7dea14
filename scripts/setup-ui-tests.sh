#!/usr/bin/env bash
# Installs what the webview and integration tests need on a fresh Debian machine, idempotently:
#   - Debian packages: chromium (headless browser for playwright-core), ripgrep and libkrb5-dev
#     (code-server's build needs them);
#   - code-server 4.100.3 (VS Code 1.100.3 in a browser) into a cache folder outside the repository.
# Prints each step. Re-running it does nothing that is already done.
# Environment: ADVMOE_UI_CACHE (default $HOME/.cache/advmoe-ui-tests) — where code-server goes.
set -euo pipefail

CACHE="${ADVMOE_UI_CACHE:-$HOME/.cache/advmoe-ui-tests}"
CS_VERSION=4.100.3
CS_DIR="$CACHE/code-server-$CS_VERSION"
RG_VERSION=1.15.11

say() { printf '[setup-ui-tests] %s\n' "$*"; }

need_pkgs=()
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v rg >/dev/null 2>&1 || need_pkgs+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_pkgs+=(libkrb5-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  say "apt-get update"
  $SUDO apt-get update -qq
  say "apt-get install ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" build-essential python3 >/dev/null
else
  say "chromium, ripgrep, libkrb5-dev: already installed"
fi
say "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null | head -1))"

if [ -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  say "code-server $CS_VERSION: already installed in $CS_DIR"
else
  say "installing code-server $CS_VERSION into $CS_DIR (about 2 minutes, 300 MB)"
  mkdir -p "$CS_DIR"
  TMP_INSTALL="$(mktemp -d)"
  # @vscode/ripgrep downloads rg from GitHub at postinstall unless it finds a cached tarball.
  RG_CACHE="$TMP_INSTALL/vscode-ripgrep-cache-$RG_VERSION"
  mkdir -p "$RG_CACHE/stage"
  cp "$(command -v rg)" "$RG_CACHE/stage/rg"
  tar -czf "$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$RG_CACHE/stage" rg
  [ -f "$CS_DIR/package.json" ] || echo '{"name":"advmoe-code-server","private":true}' > "$CS_DIR/package.json"
  (
    cd "$CS_DIR"
    TMPDIR="$TMP_INSTALL" npm_config_unsafe_perm=true npm_config_yes=true \
      npm install --no-audit --no-fund --loglevel=error "code-server@$CS_VERSION"
  )
  rm -rf "$TMP_INSTALL"
  [ -x "$CS_DIR/node_modules/.bin/code-server" ] || { say "code-server install failed"; exit 1; }
  say "code-server installed"
fi
mkdir -p "$CACHE/home"
say "code-server: $CS_DIR/node_modules/.bin/code-server ($(HOME="$CACHE/home" "$CS_DIR/node_modules/.bin/code-server" --version 2>/dev/null | tail -1))"
