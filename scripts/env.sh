# Sourced by scripts/*: picks the toolchain that builds wasm32 and puts the
# project's tools on PATH. Two routes (see scripts/setup):
#   rustup  - rustup's toolchain has the wasm32-unknown-unknown target;
#   debian  - Debian's rustc-web with a wasm32 std built from source into
#             /usr/lib/rustlib; /usr/bin must then come first on PATH, because
#             wasm-pack asks the first `rustc` on PATH for its sysroot.
# npm's binaryen (wasm-opt v132) always comes before /usr/bin: Debian's v108
# builds modules that fail at start-up.

SESSILE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SESSILE_ROOT
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
SESSILE_NODE_BIN="$SESSILE_ROOT/node_modules/.bin"

sessile_rustup_has_wasm() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx 'wasm32-unknown-unknown'
}

if [ -n "${SESSILE_WASM_ROUTE:-}" ]; then
  : # forced by the caller (rustup or debian)
elif sessile_rustup_has_wasm; then
  SESSILE_WASM_ROUTE=rustup
else
  SESSILE_WASM_ROUTE=debian
fi
export SESSILE_WASM_ROUTE

if [ "$SESSILE_WASM_ROUTE" = rustup ]; then
  export PATH="$SESSILE_NODE_BIN:$CARGO_HOME/bin:$PATH"
else
  export PATH="$SESSILE_NODE_BIN:/usr/bin:$CARGO_HOME/bin:$PATH"
  # rustc links wasm32 with `rust-lld`; some rustc-web builds ship no
  # /usr/bin/rust-lld, so name LLVM's wasm-ld (from lld-22) directly.
  if [ ! -e /usr/bin/rust-lld ] && [ -x /usr/lib/llvm-22/bin/wasm-ld ]; then
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
  fi
fi

# Links the project owns (scripts/setup makes them): `safaridriver`, which
# wasm-pack test --safari starts, is Debian's WebKitWebDriver.
SESSILE_TOOLS_BIN="$SESSILE_ROOT/.tools/bin"
export PATH="$SESSILE_TOOLS_BIN:$PATH"
# WebKitGTK's browser, driven by WebKitWebDriver (webdriver.json names it too).
SESSILE_MINIBROWSER=${SESSILE_MINIBROWSER:-/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser}
export SESSILE_MINIBROWSER

# Native checks (fmt, clippy, cargo test) use rustup's toolchain where there is
# one: on the debian route /usr/bin comes first on PATH for the wasm builds.
# (There the wasm32 clippy is Debian's, one release newer than rustup's.)
native_cargo() {
  PATH="$CARGO_HOME/bin:$PATH" cargo "$@"
}

# sessile_open_files SESSIONS LABEL: raises the open-file limit for a load
# client and its servers (one socket per session on each side, plus files),
# capped by the hard limit, which LABEL's warning names.
sessile_open_files() {
  local want=$(($1 + 1024)) hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    echo "$2: open-file hard limit $hard is below $want; sessions will be capped by it" >&2
    want=$hard
  fi
  ulimit -n "$want"
}

# The exact wasm-bindgen version in Cargo.lock (wasm-bindgen-cli must match).
sessile_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
    "$SESSILE_ROOT/Cargo.lock"
}

# sessile_npm_current DIR: whether DIR/node_modules was installed from DIR's
# current package-lock.json (npm_ci below leaves the lock's sha256 there).
sessile_npm_current() {
  (cd "$1" && [ -f node_modules/.sessile-lock.sha256 ] &&
    sha256sum -c --status node_modules/.sessile-lock.sha256 2>/dev/null)
}

# sessile_npm_ci DIR: `npm ci` in DIR from its package-lock.json, using npm's
# cache before the registry; records the lock's sha256 for sessile_npm_current.
# A cached package list older than the lock (ETARGET: "no matching version")
# fails the cache-first install: it is then run again against the registry.
sessile_npm_ci() {
  (cd "$1" && {
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error ||
      { echo "[npm] the cache-first install failed; again from the registry" >&2 &&
        npm ci --prefer-online --no-audit --no-fund --loglevel=error; }
  } && sha256sum package-lock.json >node_modules/.sessile-lock.sha256)
}

# The Chromium (or Chrome) the JS tests drive; SESSILE_CHROMIUM overrides.
if [ -z "${SESSILE_CHROMIUM:-}" ]; then
  SESSILE_CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
fi
export SESSILE_CHROMIUM

# Flags every headless Chromium started by the project gets (root, closed network).
export SESSILE_CHROMIUM_FLAGS="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync"

# sessile_start_xvfb: starts a virtual X display for WebKitGTK on a free
# display number (Xvfb picks it: -displayfd), exports DISPLAY and
# SESSILE_XVFB_PID; the caller stops it (kill "$SESSILE_XVFB_PID").
sessile_start_xvfb() {
  local fifo display=
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$fifo" >/dev/null 2>&1 &
  SESSILE_XVFB_PID=$!
  read -r -t 15 display <"$fifo" || true
  rm -f "$fifo"
  if [ -z "$display" ]; then
    kill "$SESSILE_XVFB_PID" 2>/dev/null || true
    echo "sessile: Xvfb did not start (WebKit needs a display)" >&2
    return 1
  fi
  export DISPLAY=":$display" SESSILE_XVFB_PID
}
