#!/usr/bin/env bash
# Builds what a device call carries (run from the repository root; both folders are git-ignored locally via
# .git/info/exclude): .whl/ holds the project's runtime wheels that the device image lacks (~15 MB), .whl-fib/ a
# trimmed FlashInfer 0.7.2.post1 with its small dependencies as one .tar.xz (~16 MB; the wheel alone is 62 MB and
# a call carries at most 64 MiB). Then: run(command="bash evals/device/setup.sh && ...", carry=[".whl", ".whl-fib"]).
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.whl-fib/' .git/info/exclude 2>/dev/null || echo '/.whl-fib/' >> .git/info/exclude
plat=(--python-version 3.12 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux_2_28_x86_64 --only-binary=:all:)
tmp=$(mktemp -d)
python3 -m pip download -q --dest "$tmp/dl" "${plat[@]}" 'pydantic>=2.7' 'structlog>=24.1,<26' 'langgraph>=1.0' \
  'langgraph-checkpoint-sqlite>=2.0' 'langchain-openai>=1.0' pytest-socket pytest-timeout 2>&1 | grep -v WARNING || true
# already in the device image (Python 3.12, torch 2.11+cu130, triton 3.6.0, pytest)
for p in pytest pluggy iniconfig pygments pyyaml regex tiktoken xxhash charset_normalizer requests urllib3 certifi \
         idna packaging; do rm -f "$tmp/dl/$p"-*.whl; done
rm -rf .whl && mkdir .whl && cp "$tmp"/dl/*.whl .whl/
python3 -m pip download -q --dest "$tmp/fi" "${plat[@]}" --no-deps flashinfer-python==0.7.2.post1 apache-tvm-ffi \
  cuda-tile einops 2>&1 | grep -v WARNING || true
mkdir "$tmp/site" && for w in "$tmp"/fi/*.whl; do unzip -q -o "$w" -d "$tmp/site"; done
data="$tmp/site/flashinfer/data"  # sources for kernels the four FIB tasks never build on Hopper
rm -rf "$data"/csrc/{cake_*,kda,gdn,blackwell_*,alphamoe*,experimental} "$data"/cutlass/{python,examples,test,tools} \
  "$data"/cccl/{python,ci}
rm -rf .whl-fib && mkdir .whl-fib && tar -cJf .whl-fib/flashinfer-site.tar.xz -C "$tmp/site" .
rm -rf "$tmp"
du -sh .whl .whl-fib
