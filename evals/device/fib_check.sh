#!/usr/bin/env bash
# Issue 17's checks on a device machine, each step under its own timeout (so a call cut short keeps what finished):
#   tests       the GPU tests (~140 s; TESTS_K: only those -k selects)              fib         both decode seeds against FlashInfer, cold and hot (240 s)
#   search_mla  the MLA playbook search (SEARCH_S, default 180 s; + SEARCH_EVAL_S, default 25: ~150 lets the
#               best and the seed be re-timed after the search; SEARCH_GATE_US: search with that launch gate
#               on a copy of the task)   search_gqa  the same for GQA
#   cheats      the cheat/fault corpus (300 s)      sweep       seed knob variants with do_bench (150 s)
#   spread      the candidate-vs-library timing-spread probe: idle gap and end-event order, one process (~120 s)
#   probe       the slab-mapping probe (100 s)      repeat      seeds twice and knob variants through the judge (420 s)
#   quick       both decode seeds and their best balanced variants through the judge, its per-call trace kept (240 s)
#   overlap     the MLA seed and both tasks' best variants at launch overlaps 200 and 500 us in turn, trace kept (300 s)
#   gate        the MLA seed and both tasks' best variants (GATE_VARIANTS) without, then with the launch gate (GATE_US: 500),
#               trace kept, compared by overlap_compare.py (GATE_S, default 300 s)
#   hotwait     the MLA seed and balanced variant with the contestant's hot wait off, on (20 ms), off (HOTWAIT_RUNS), each
#               run's trace read by judge_host.py (spread, spin time): ~3 x 150 s
# Run from the repository root with carry [".whl", ".whl-fib"] (see bundle.sh); a call lasts at most 10 minutes,
# so pick steps that fit, e.g. STEPS="probe repeat" first and STEPS="search_gqa search_mla" while it is warm.
# The device tool returns at most 8 files from $OUT, so the steps write under $RES and every finished step
# refreshes one archive, $OUT/fib_check.tgz (unpack it here with tar -xzf).
set -u
: "${OUT:?OUT must name the folder that comes back}"
RES=${RES:-/tmp/fib_check}
mkdir -p "$RES"
. evals/device/setup.sh
STEPS=${STEPS:-"tests fib search_mla search_gqa cheats sweep"}
# the repeat step's knob variants, timed by the judge beside the seeds (split_waves, balanced chunks, all_heads; MLA's
# best sweep variant and balanced chunks)
VARIANTS='{"gqa_paged_decode_h32_kv4_d128_ps1": [{"WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
  {"BALANCED": true, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1},
  {"BALANCED": true, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1, "BLOCK_N": 64, "NUM_STAGES": 3},
  {"ALL_HEADS": true, "NUM_WARPS": 8, "BLOCK_N": 16, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1}],
  "mla_paged_decode_h16_ckv512_kpe64_ps1": [{"BLOCK_N": 16, "NUM_WARPS": 4, "WAVES": 8},
  {"BALANCED": true, "WAVES": 8, "MIN_SPLIT_BLOCKS": 1}, {"BALANCED": true, "WAVES": 4, "NUM_WARPS": 4}]}'
# the quick step: both decode seeds and their best balanced-chunk variants on the H100
# (evals/results/fib_gpu_quick_variants_h100.md) through the judge (~30 s per evaluation after FlashInfer's build)
# (QUICK_VARIANTS replaces them: the same JSON shape as VARIANTS)
QUICK=${QUICK_VARIANTS:-'{"gqa_paged_decode_h32_kv4_d128_ps1": [{"BALANCED": true, "WAVES": 7, "MIN_SPLIT_BLOCKS": 1, "PV_BF16X2": true},
  {"BALANCED": true, "WAVES": 4, "MIN_SPLIT_BLOCKS": 1, "BLOCK_N": 64, "NUM_STAGES": 3}],
  "mla_paged_decode_h16_ckv512_kpe64_ps1": [{"BALANCED": true, "WAVES": 2, "MIN_SPLIT_BLOCKS": 1}]}'}
# the gate step's evaluations (GATE_VARIANTS replaces them)
GATE_DEFAULT='{"gqa_paged_decode_h32_kv4_d128_ps1": [{"BALANCED": true, "WAVES": 7, "MIN_SPLIT_BLOCKS": 1, "PV_BF16X2": true}],
  "mla_paged_decode_h16_ckv512_kpe64_ps1": [{}, {"BALANCED": true, "WAVES": 2, "MIN_SPLIT_BLOCKS": 1}]}'
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$RES/device.txt"
for step in $STEPS; do
  echo "== $step $(date -u +%T)"
  case $step in
    tests) (cd "$REPO" && PYTHONPATH=$REPO:/tmp/site:/tmp/fi timeout ${TESTS_S:-150} python -m pytest -q -p no:cacheprovider \
             -m gpu tests/test_gpu.py -v --timeout 60 --durations=20 ${TESTS_K:+-k "$TESTS_K"} > "$RES/pytest_gpu.txt" 2>&1)
           tail -25 "$RES/pytest_gpu.txt" ;;
    fib) (cd /tmp && timeout 240 python "$REPO/evals/fib_gpu.py" --out "$RES" --name fib_gpu --hot \
           --tasks mla_paged_decode_h16_ckv512_kpe64_ps1,gqa_paged_decode_h32_kv4_d128_ps1 > "$RES/fib.log" 2>&1)
         tail -4 "$RES/fib.log" ;;
    search_mla|search_gqa)
      task=mla_paged_decode_h16_ckv512_kpe64_ps1
      [ "$step" = search_gqa ] && task=gqa_paged_decode_h32_kv4_d128_ps1
      (cd /tmp && timeout $(( ${SEARCH_S:-180} + ${SEARCH_EVAL_S:-25} )) python "$REPO/evals/fib_search_gpu.py" "$RES/$step" "$task" \
         --search-seconds ${SEARCH_S:-180} ${SEARCH_GATE_US:+--launch-gate-us $SEARCH_GATE_US} \
         > "$RES/$step.log" 2>&1)
      tail -6 "$RES/$step.log" ;;
    cheats) (cd /tmp && timeout ${CHEATS_S:-300} python "$REPO/evals/cheats_gpu_check.py" "$RES/cheats" "$REPO" > "$RES/cheats.log" 2>&1)
            tail -6 "$RES/cheats.log" ;;
    sweep) (cd /tmp && timeout 150 python "$REPO/evals/fib_knob_sweep.py" "$RES/sweep" > "$RES/sweep.log" 2>&1)
           tail -4 "$RES/sweep.log" ;;
    spread) (cd /tmp && timeout ${SPREAD_S:-200} python "$REPO/evals/timing_spread_probe.py" "$RES/spread" --calls 200 \
               > "$RES/spread.log" 2>&1)
            tail -30 "$RES/spread.log" ;;
    probe) (cd /tmp && timeout 100 python "$REPO/evals/ipc_gather_probe.py" "$RES/probe" max \
              mla_paged_decode_h16_ckv512_kpe64_ps1 > "$RES/probe.log" 2>&1)
           tail -4 "$RES/probe.log" ;;
    repeat) (cd /tmp && timeout 420 python "$REPO/evals/fib_gpu.py" --out "$RES" --name fib_gpu_repeat --repeat 2 \
               --tasks gqa_paged_decode_h32_kv4_d128_ps1,mla_paged_decode_h16_ckv512_kpe64_ps1 --variants "$VARIANTS" \
               > "$RES/repeat.log" 2>&1)
            grep -v '^20..-' "$RES/repeat.log" | tail -8 ;;
    quick) (cd /tmp && KSEARCH_JUDGE_TRACE=1 timeout ${QUICK_S:-240} python "$REPO/evals/fib_gpu.py" --out "$RES" \
              --name fib_gpu_quick --workdir "$RES/quick_engine" \
              --tasks gqa_paged_decode_h32_kv4_d128_ps1,mla_paged_decode_h16_ckv512_kpe64_ps1 --variants "$QUICK" \
              > "$RES/quick.log" 2>&1)
           grep -v '^20..-' "$RES/quick.log" | tail -8 ;;
    overlap) (cd /tmp && KSEARCH_JUDGE_TRACE=1 timeout ${OVERLAP_S:-300} python "$REPO/evals/fib_gpu.py" --out "$RES" \
                --name fib_gpu_overlap --workdir "$RES/overlap_engine" --launch-overlap-us 200,500 \
                --tasks gqa_paged_decode_h32_kv4_d128_ps1,mla_paged_decode_h16_ckv512_kpe64_ps1 --repeat 0 \
                --variants '{"gqa_paged_decode_h32_kv4_d128_ps1": [{"BALANCED": true, "WAVES": 7, "MIN_SPLIT_BLOCKS": 1, "PV_BF16X2": true}],
                  "mla_paged_decode_h16_ckv512_kpe64_ps1": [{}, {"BALANCED": true, "WAVES": 2, "MIN_SPLIT_BLOCKS": 1}]}' \
                > "$RES/overlap.log" 2>&1)
             grep -v '^20..-' "$RES/overlap.log" | tail -8 ;;
    gate) (cd /tmp && KSEARCH_JUDGE_TRACE=1 timeout ${GATE_S:-300} python "$REPO/evals/fib_gpu.py" --out "$RES" \
             --name fib_gpu_gate --workdir "$RES/gate_engine" --launch-gate-us 0,${GATE_US:-500} \
             --tasks mla_paged_decode_h16_ckv512_kpe64_ps1,gqa_paged_decode_h32_kv4_d128_ps1 --repeat 0 \
             --variants "${GATE_VARIANTS:-$GATE_DEFAULT}" > "$RES/gate.log" 2>&1)
          python "$REPO/evals/overlap_compare.py" "$RES/fib_gpu_gate.json" > "$RES/gate_compare.md" 2>&1
          python "$REPO/evals/judge_host.py" "$RES/gate_engine/workers/worker-gpu.log" > "$RES/gate_host.md" 2>&1
          cat "$RES/gate_compare.md"; grep -v '^20..-' "$RES/gate.log" | tail -4 ;;
    hotwait) n=0
             for ms in ${HOTWAIT_RUNS:-0 20 0}; do
               n=$((n + 1)); tag=hotwait_${n}_${ms}ms
               (cd /tmp && KSEARCH_CONTESTANT_HOT_WAIT_MS=$ms KSEARCH_JUDGE_TRACE=1 timeout ${HOTWAIT_S:-150} \
                  python "$REPO/evals/fib_gpu.py" --out "$RES" --name "fib_gpu_$tag" --workdir "$RES/${tag}_engine" \
                  --tasks mla_paged_decode_h16_ckv512_kpe64_ps1 --repeat 0 \
                  --variants '{"mla_paged_decode_h16_ckv512_kpe64_ps1": [{}, {"BALANCED": true, "WAVES": 2, "MIN_SPLIT_BLOCKS": 1}]}' \
                  > "$RES/$tag.log" 2>&1)
               python "$REPO/evals/judge_host.py" "$RES/${tag}_engine/workers/worker-gpu.log" > "$RES/${tag}_host.md" 2>&1
               echo "-- $tag"; grep -v '^20..-' "$RES/$tag.log" | tail -3
             done ;;
    *) echo "unknown step '$step' (steps: tests fib search_mla search_gqa cheats sweep spread probe repeat quick overlap gate hotwait)"; exit 2 ;;
  esac
  tar -czf "$OUT/fib_check.tgz.part" -C "$RES" . && mv "$OUT/fib_check.tgz.part" "$OUT/fib_check.tgz"
done
