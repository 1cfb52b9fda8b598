#!/usr/bin/env bash
# The GPU benchmark: native walf-lab on wgpu against burn's CPU backend, in one run, for the
# bundled brown-bert and minilm-brown and a random bert-base shape (examples/bench_gpu.rs): the
# probe of the test split and up to 20 WALF steps of each target, with the GPU's ratios to the
# CPU and how far its results are from the CPU's. Unattended, and ends within 8 minutes.
#
#   scripts/gpu-bench.sh [--bin PATH] [--out FILE] [--smoke] [--fusion] [--autotune]
#                        [-- BENCH_ARGS...]
#
#   --bin PATH  a bench_gpu built before (`cargo build --release --example bench_gpu`), for a
#               machine with a GPU and no registry to build from; without it, it is built here
#   --out FILE  also write the results to FILE (default: target/gpu-bench.txt)
#   --smoke     the tiny fixture BERT, two steps, any adapter (lavapipe too), a debug build:
#               checks that the benchmark runs, on a machine without a GPU (CI)
#   --fusion    built with burn's operation fusion for wgpu (`--features fusion`): run once with
#               it and once without for the figures that decide whether the app turns it on
#   --autotune  built with burn's autotune for wgpu (`--features autotune`; with --fusion, both):
#               the same, for autotune
#
# It needs a Vulkan driver for the GPU (wgpu); without a usable adapter it says so and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" out="target/gpu-bench.txt" smoke=0
extra=() features=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --fusion) features+=(fusion); shift ;;
    --autotune) features+=(autotune); shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "gpu-bench: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done

if [ ${#features[@]} -gt 0 ]; then
  features=(--features "$(IFS=,; echo "${features[*]}")")
fi
if [ -z "$bin" ]; then
  if [ "$smoke" = 1 ]; then
    cargo build --quiet --example bench_gpu ${features[@]+"${features[@]}"}
    bin=target/debug/examples/bench_gpu
  else
    cargo build --quiet --release --example bench_gpu ${features[@]+"${features[@]}"}
    bin=target/release/examples/bench_gpu
  fi
fi
[ -x "$bin" ] || { echo "gpu-bench: $bin is not an executable" >&2; exit 2; }
mkdir -p "$(dirname "$out")"

# wgpu on Linux may want a runtime folder; an unattended shell may have none
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

if [ "$smoke" = 1 ]; then
  args=(tests/fixtures/models/bert --software --steps 2 --batch-size 1 --budget-s 5 --deadline-s 240)
else
  # 20 steps, a run cut after 30 s (never under two steps), the rest skipped after 400 s: the
  # whole run, the bert-base shape's first load included, ends inside 8 minutes
  args=(--steps 20 --budget-s 30 --deadline-s 400)
fi
# the timeout is a last resort: the deadline above ends the run cleanly before it
timeout 480 "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"} --out "$out"
