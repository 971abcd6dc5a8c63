#!/usr/bin/env bash
# Fuzzing (docs/fuzzing.md): the cargo-fuzz targets of fuzz/, one at a time
# (FUZZ_PARALLEL=N: N at a time), one libFuzzer process each (no
# -jobs/-workers: a single in-process fuzzer).
#
#   scripts/fuzz.sh                  smoke: every target for FUZZ_SMOKE_SECONDS (8 s)
#   scripts/fuzz.sh smoke            the same (scripts/test.sh runs this)
#   scripts/fuzz.sh long SECONDS     every target for SECONDS (>= 600 for the
#                                    record); writes the figures into docs/fuzzing.md
#   scripts/fuzz.sh run TARGET [libFuzzer args…]   one target, as long as you like
#
# cargo-fuzz needs nightly flags; this stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1. Built without a sanitizer (`-s none`, FUZZ_SANITIZER to
# change): the targets are safe Rust (the workspace denies `unsafe_code`; its one audited exception is the process runtime's prctl call), so what
# they find are panics, failed assertions, overflows (debug assertions are
# on), timeouts and memory blow-ups, which libFuzzer catches by itself.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-smoke}"
sanitizer="${FUZZ_SANITIZER:-none}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
triple="x86_64-unknown-linux-gnu"
bin_dir="$target_dir/$triple/release"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

targets() {
    cargo fuzz list --fuzz-dir fuzz
}

build() {
    echo "== fuzz: building the targets (sanitizer: $sanitizer)"
    cargo fuzz build --fuzz-dir fuzz -s "$sanitizer" --codegen-units 16 --target-dir "$target_dir" "$@"
}

# run TARGET SECONDS LOG: fuzzes TARGET into its working corpus (fuzz/corpus,
# not committed) starting from the committed seeds (fuzz/seeds).
run_target() {
    local target="$1" seconds="$2" log="$3"
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" "fuzz/seeds/$target"
    local status=0
    "$bin_dir/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
        -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    return "$status"
}

# figures TARGET LOG STATUS: one markdown table row from libFuzzer's output.
figures() {
    local target="$1" log="$2" status="$3"
    local execs rate cov corpus crashes
    # A target that crashes on its first inputs prints no stats: `|| true`.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
    cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    crashes=$(find "fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    [ "$status" = 0 ] || [ "$crashes" != 0 ] || crashes="exit $status"
    echo "| \`$target\` | ${execs:-?} | ${rate:-?} | ${cov:-?} | $corpus | $crashes |"
}

table_head() {
    echo "| target | execs | exec/s | coverage (edges) | corpus | crashes |"
    echo "|---|---:|---:|---:|---:|---:|"
}

fuzz_all() {
    local seconds="$1" out="$2" failed=0
    local logs="$target_dir/logs" parallel="${FUZZ_PARALLEL:-1}"
    mkdir -p "$logs"
    table_head >"$out"
    local all=($(targets)) batch=()
    # FUZZ_PARALLEL targets at once (default 1): each still fuzzes for
    # `seconds` of wall time, sharing the CPUs.
    for ((i = 0; i < ${#all[@]}; i += parallel)); do
        batch=("${all[@]:i:parallel}")
        local pids=()
        for target in "${batch[@]}"; do
            echo "== fuzz: $target for ${seconds} s"
            (
                status=0
                run_target "$target" "$seconds" "$logs/$target.log" || status=$?
                echo "$status" >"$logs/$target.status"
            ) &
            pids+=($!)
        done
        wait "${pids[@]}" || true
        for target in "${batch[@]}"; do
            local status
            status=$(cat "$logs/$target.status")
            figures "$target" "$logs/$target.log" "$status" | tee -a "$out"
            if [ "$status" != 0 ]; then
                failed=1
                echo "fuzz: $target failed (exit $status); its input is in fuzz/artifacts/$target/:" >&2
                grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$logs/$target.log" >&2 || tail -20 "$logs/$target.log" >&2
            fi
        done
    done
    return "$failed"
}

case "$mode" in
smoke)
    seconds="${FUZZ_SMOKE_SECONDS:-8}"
    build
    fuzz_all "$seconds" "$target_dir/smoke.md"
    echo "== fuzz: smoke passed (${seconds} s a target)"
    ;;
long)
    seconds="${2:?usage: scripts/fuzz.sh long SECONDS}"
    # The commit the targets are built from (HEAD may move during the run).
    commit="$(git rev-parse --short HEAD)"
    build
    table="$target_dir/long.md"
    status=0
    fuzz_all "$seconds" "$table" || status=$?
    {
        echo "<!-- fuzz-figures:start -->"
        echo "Run of $(date -u +%Y-%m-%d) on $(nproc) CPU(s), ${seconds} s a target (${FUZZ_PARALLEL:-1} at a time), sanitizer \`$sanitizer\`, commit \`$commit\`:"
        echo
        cat "$table"
        echo "<!-- fuzz-figures:end -->"
    } >"$target_dir/figures.md"
    # Replace what is between the markers of docs/fuzzing.md.
    awk -v figures="$target_dir/figures.md" '
        /<!-- fuzz-figures:start -->/ { while ((getline line < figures) > 0) print line; skip = 1; next }
        /<!-- fuzz-figures:end -->/ { skip = 0; next }
        !skip { print }
    ' docs/fuzzing.md >"$target_dir/fuzzing.md"
    mv "$target_dir/fuzzing.md" docs/fuzzing.md
    echo "== fuzz: figures written to docs/fuzzing.md"
    exit "$status"
    ;;
run)
    target="${2:?usage: scripts/fuzz.sh run TARGET [libFuzzer args…]}"
    shift 2
    build "$target"
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" "fuzz/seeds/$target"
    exec "$bin_dir/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
        -artifact_prefix="fuzz/artifacts/$target/" -timeout=10 -rss_limit_mb=2048 -max_len=8192 "$@"
    ;;
*)
    echo "usage: scripts/fuzz.sh [smoke | long SECONDS | run TARGET [libFuzzer args…]]" >&2
    exit 2
    ;;
esac
