// Seed rmsnorm in CUDA: one block of 256 threads per row, 16-byte bf16 loads, fp32 math,
// a warp-shuffle then shared-memory reduction of the sum of squares.
#include <cuda_bf16.h>

extern "C" __global__ void __launch_bounds__(256)
rmsnorm_bf16(__nv_bfloat16* __restrict__ out, const __nv_bfloat16* __restrict__ x,
             const __nv_bfloat16* __restrict__ w, int hidden, float eps) {
    const int row = blockIdx.x;
    const __nv_bfloat16* xr = x + (size_t)row * hidden;
    __nv_bfloat16* yr = out + (size_t)row * hidden;
    const int vec = 8;  // 8 bf16 = 16 bytes
    float sumsq = 0.f;
    for (int i = threadIdx.x * vec; i < hidden; i += blockDim.x * vec) {
        uint4 raw = *reinterpret_cast<const uint4*>(xr + i);
        const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
#pragma unroll
        for (int j = 0; j < vec; ++j) { float f = __bfloat162float(v[j]); sumsq += f * f; }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sumsq += __shfl_xor_sync(0xffffffffu, sumsq, off);
    __shared__ float partial[32];
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sumsq;
    __syncthreads();
    if (threadIdx.x < 32) {
        float s = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.f;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (threadIdx.x == 0) partial[0] = s;
    }
    __syncthreads();
    const float inv_rms = rsqrtf(partial[0] / hidden + eps);
    for (int i = threadIdx.x * vec; i < hidden; i += blockDim.x * vec) {
        uint4 raw = *reinterpret_cast<const uint4*>(xr + i);
        uint4 wraw = *reinterpret_cast<const uint4*>(w + i);
        const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
        const __nv_bfloat16* wv = reinterpret_cast<const __nv_bfloat16*>(&wraw);
        uint4 res;
        __nv_bfloat16* r = reinterpret_cast<__nv_bfloat16*>(&res);
#pragma unroll
        for (int j = 0; j < vec; ++j) r[j] = __float2bfloat16(__bfloat162float(v[j]) * inv_rms * __bfloat162float(wv[j]));
        *reinterpret_cast<uint4*>(yr + i) = res;
    }
}
