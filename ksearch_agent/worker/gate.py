"""The launch gate: GPU work that holds the whole device until the host has finished launching a timed call.

Flushed timing with a launch overlap queues a fixed spin before the start event so a call's host-side launch
work overlaps GPU work; host work that outlasts the spin still reaches the figure, and on the FIB decode tasks
it did: the candidate's reported times tracked its process's host time (correlation ~0.98 in
``evals/results/judge_host_h100.md``), spreading its figures several times wider than the library's. The gate
replaces the spin with a wait the host ends: the timer queues the gate, records the start event, makes the
call, and releases the gate once the call has returned, so every launch of the call is queued before the
timed region begins and the host's speed cannot reach the figure.

The gate is two blocks of 1024 threads per SM, which fills every SM's thread slots: no kernel on any stream
can start under it, so work a call puts on another stream cannot run ahead of the start event unseen (copy
engines are not held). Block 0's first thread polls a word in pinned host memory (device-visible under
unified addressing) for this call's generation number and passes it on through device memory to the other
blocks' first threads. Every wait is capped (``max_us``), so a release that never comes (a call that
synchronizes the device inside itself, or dies) costs at most that long and then the call runs, its host
time counted as without a gate.

Launched through cuda-python directly, not :mod:`ksearch_agent.cuda_launch`, so the worker's launch counter
never counts it as the candidate's. Imports only torch, numpy, cuda-python and the standard library.
"""

from __future__ import annotations

from typing import Any

GATE_SOURCE = r"""
__device__ __forceinline__ unsigned long long ks_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
extern "C" __global__ void __launch_bounds__(1024) ks_gate(const volatile int* host_word, volatile int* dev_word,
                                                           int generation, unsigned long long max_ns) {
  if (threadIdx.x == 0) {
    const unsigned long long t0 = ks_now();
    if (blockIdx.x == 0) {
      while (*host_word != generation && ks_now() - t0 < max_ns) {}
      *dev_word = generation;
      __threadfence();
    } else {
      while (*dev_word != generation && ks_now() - t0 < max_ns) {}
    }
  }
  __syncthreads();
}
"""
THREADS = 1024
BLOCKS_PER_SM = 2  # 2 x 1024 threads: every thread slot of an sm_90 SM (and of sm_80's 2048)
MAX_GATE_US = 100_000.0


class Gate:
    """One process's gate on one device: :meth:`close` queues it on the current stream, :meth:`open` ends it."""

    def __init__(self, device: Any) -> None:
        import torch
        from cuda.core import Device, ObjectCode

        from ksearch_agent.cuda_launch import _device_arch
        from ksearch_agent.nvrtc import compile_cuda

        self._torch = torch
        self.host_word = torch.zeros(1, dtype=torch.int32, pin_memory=True)
        self._word = (
            self.host_word.numpy()
        )  # writes through numpy skip torch's dispatch (~µs) in the timed region
        self.dev_word = torch.zeros(1, dtype=torch.int32, device=device)
        self.blocks = BLOCKS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
        self.generation = 0
        binary = compile_cuda(GATE_SOURCE, name="ks_gate.cu", arch=_device_arch())
        self._device = Device(torch.device(device).index or 0)
        self._device.set_current()
        self._kernel = ObjectCode.from_cubin(binary.cubin).get_kernel("ks_gate")
        self._streams: dict[int, Any] = {}

    def close(self, max_us: float) -> None:
        """Queue the gate for a new generation on torch's current stream (the caller has synchronized)."""
        import numpy as np
        from cuda.core import LaunchConfig, launch

        self.generation = (self.generation + 1) % (1 << 30)
        torch_stream = self._torch.cuda.current_stream()
        stream = self._streams.get(torch_stream.cuda_stream)
        if stream is None:
            stream = self._streams[torch_stream.cuda_stream] = self._device.create_stream(torch_stream)
        max_ns = int(min(max(max_us, 0.0), MAX_GATE_US) * 1000)
        launch(
            stream,
            LaunchConfig(grid=(self.blocks,), block=(THREADS,)),
            self._kernel,
            np.uintp(self.host_word.data_ptr()),
            np.uintp(self.dev_word.data_ptr()),
            np.int32(self.generation),
            np.uint64(max_ns),
        )

    def open(self) -> None:
        """Release the gate: the call has returned, so everything it launched is queued behind it."""
        self._word[0] = self.generation
