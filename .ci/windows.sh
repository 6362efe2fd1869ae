#!/usr/bin/env bash
# The Windows suite and the other-platform checks (issue 6), called from .ci/run.
#
#   1. Cross-build for x86_64-pc-windows-gnu (Debian's mingw-w64 linker) and run the whole
#      workspace's tests under Wine (minus the packages in WINDOWS_EXCLUDED, each named
#      loudly with its reason), in a fresh prefix under the target dir.
#   2. Type-check the whole workspace for x86_64-apple-darwin and x86_64-unknown-freebsd.
#
# If Wine, mingw or a Rust target cannot be installed on this machine, the part that needs
# it prints a loud "SKIPPED: ... (why)" and the script goes on: never a silent skip.
# A test or check that runs and fails fails the script.
#
# Run alone: bash .ci/windows.sh   (honours CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$TARGET_DIR"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd)"
WIN=x86_64-pc-windows-gnu
START=$SECONDS

skipped() {
    echo
    echo "################################################################################"
    echo "SKIPPED: $1"
    echo "################################################################################"
    echo
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

# ----- toolchain ---------------------------------------------------------------------------

have_wine_tools() {
    command -v x86_64-w64-mingw32-gcc >/dev/null && command -v wine >/dev/null &&
        command -v wineboot >/dev/null && command -v wineserver >/dev/null &&
        { [ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null; }
}

windows_ok=1
why=""
if ! have_wine_tools; then
    echo "== installing mingw-w64 and Wine (about 15 s, 1.2 GB)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            gcc-mingw-w64-x86-64 wine wine64 >/dev/null 2>&1 || ! have_wine_tools; then
        windows_ok=0
        why="installing gcc-mingw-w64-x86-64, wine and wine64 with apt-get failed"
    fi
fi

declare -A target_ok
for t in "$WIN" x86_64-apple-darwin x86_64-unknown-freebsd; do
    if rustup target list --installed 2>/dev/null | grep -qx "$t" ||
        rustup target add "$t" >/dev/null 2>&1; then
        target_ok[$t]=1
    else
        target_ok[$t]=0
    fi
done
if [ "$windows_ok" = 1 ] && [ "${target_ok[$WIN]}" = 0 ]; then
    windows_ok=0
    why="rustup target add $WIN failed"
fi

# ----- Windows, under Wine -----------------------------------------------------------------

# Packages whose tests do not build for Windows, "name:why". Every other package runs whole.
WINDOWS_EXCLUDED=(
    "torsion-benches:the comparators and the raw floor are POSIX (posix_spawn, fcntl, waitpid)"
    "torsion-examples:the run example is POSIX (fd maps, PTYs, the raw spawn layer)"
)

run_windows_suite() {
    export WINEPREFIX="$TARGET_DIR/wine/prefix"
    export WINEDEBUG=-all
    export WINEDLLOVERRIDES="mscoree,mshtml="
    export WINEARCH=win64
    rm -rf "$WINEPREFIX"
    mkdir -p "$WINEPREFIX"

    # One persistent wineserver for the whole run, its stdio on /dev/null: otherwise a
    # server started by the first test binary inherits that test's pipes and cargo waits
    # for it.
    wineserver -p </dev/null >/dev/null 2>&1
    trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

    echo "== wine prefix ($(wine --version 2>/dev/null || echo wine))"
    local t0=$SECONDS
    wineboot --init </dev/null >/dev/null 2>&1
    echo "   fresh prefix in $((SECONDS - t0)) s"

    # Rust >= 1.78 imports ProcessPrng from bcryptprimitives.dll, which Wine 8.0 lacks:
    # build a stand-in (RtlGenRandom underneath) and put it in the prefix's system32.
    local dll="$TARGET_DIR/wine/bcryptprimitives.dll"
    x86_64-w64-mingw32-gcc -shared -O2 -o "$dll" \
        .ci/wine/bcryptprimitives.c .ci/wine/bcryptprimitives.def -ladvapi32
    cp "$dll" "$WINEPREFIX/drive_c/windows/system32/"

    echo "== tests under Wine ($WIN)"
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
    # Every package's suite whole (unit, integration and doc tests), never a list of test
    # files: a unix-only test file says so itself with `#![cfg(unix)]` (issue 10), so a new
    # test runs here unless it opts out in its own source.
    local exclude=()
    for p in "${WINDOWS_EXCLUDED[@]}"; do
        exclude+=(--exclude "${p%%:*}")
        skipped "$WIN tests of ${p%%:*}: ${p#*:}"
    done
    cargo test --target "$WIN" --workspace "${exclude[@]}" --lib --bins --tests
    # Doc tests too: a crate example that only applies to POSIX gates itself in its source.
    cargo test --target "$WIN" --workspace "${exclude[@]}" --doc
    wineserver -k >/dev/null 2>&1 || true
    trap - EXIT
}

if [ "$windows_ok" = 1 ]; then
    run_windows_suite
else
    skipped "windows suite ($why)"
fi

# ----- macOS and FreeBSD: type-checked only ------------------------------------------------

# Packages left out of the macOS type-check, "name:why" (their build scripts compile C for
# the target, and Debian's gcc cannot target macOS).
DARWIN_EXCLUDED=(
    "torsion-tls:ring's C and Mach-O assembly need a macOS C toolchain (gcc cannot target darwin)"
)
# The examples' `tls` feature (default) pulls torsion-tls in: they are checked for macOS
# without it below.
DARWIN_EXCLUDED_EXAMPLES="torsion-examples"

for t in x86_64-apple-darwin x86_64-unknown-freebsd; do
    if [ "${target_ok[$t]}" = 1 ]; then
        echo "== cargo check --target $t (type-check only)"
        excluded=()
        if [ "$t" = x86_64-apple-darwin ]; then
            for p in "${DARWIN_EXCLUDED[@]}"; do
                excluded+=(--exclude "${p%%:*}")
                skipped "cargo check --target $t of ${p%%:*}: ${p#*:}"
            done
        fi
        if [ "$t" = x86_64-apple-darwin ]; then
            excluded+=(--exclude "$DARWIN_EXCLUDED_EXAMPLES")
            cargo check --workspace "${excluded[@]}" --all-targets --target "$t"
            echo "== cargo check --target $t -p $DARWIN_EXCLUDED_EXAMPLES --no-default-features (no tls)"
            cargo check -p "$DARWIN_EXCLUDED_EXAMPLES" --no-default-features --all-targets --target "$t"
        else
            cargo check --workspace "${excluded[@]}" --all-targets --target "$t"
        fi
    else
        skipped "cargo check --target $t (rustup target add $t failed)"
    fi
done

echo "== windows.sh done in $((SECONDS - START)) s"
