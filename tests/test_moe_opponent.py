"""The Hopper MoE opponent's own logic on the CPU: expert-parallel placement, the hidden states' dequantization
(FIB's [H/128, T] scale layout) and what plan() hands FlashInfer, with FlashInfer replaced by a recorder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ksearch_agent.opponents import OpponentUnavailable
from ksearch_agent.opponents import flashinfer_moe as moe

TASK = (
    Path(__file__).resolve().parent.parent
    / "tasks"
    / "moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048"
)


def _reference() -> Any:
    spec = importlib.util.spec_from_file_location("moe_reference_for_test", TASK / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_experts_map_to_one_expert_parallel_rank() -> None:
    assert moe.expert_parallel_rank(256, 32, 0) == (8, 0)
    assert moe.expert_parallel_rank(256, 32, 192) == (8, 6)
    assert moe.expert_parallel_rank(256, 32, 224) == (8, 7)
    with pytest.raises(ValueError, match="not a multiple of 32"):
        moe.expert_parallel_rank(256, 32, 16)
    with pytest.raises(ValueError, match="below 256"):
        moe.expert_parallel_rank(256, 32, 256)
    with pytest.raises(ValueError, match="do not split"):
        moe.expert_parallel_rank(256, 24, 0)


def _fp8_hidden(tokens: int, hidden: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    values = (torch.randn(tokens, hidden, generator=gen) * 3).to(torch.float8_e4m3fn)
    scales = torch.rand(hidden // 128, tokens, generator=gen) * 0.1 + 0.15  # [H/128, T], as FIB stores them
    return values, scales


def test_hidden_states_are_dequantized_with_the_transposed_block_scales() -> None:
    values, scales = _fp8_hidden(5, 384)
    got = moe.dequantize_hidden_states(values, scales)
    assert got.dtype == torch.bfloat16 and got.shape == (5, 384)
    # the reference's own dequantization, rounded to bf16, is the same tensor bit for bit
    ref = values.float() * scales.T.repeat_interleave(128, dim=1)
    assert torch.equal(got, ref.to(torch.bfloat16))
    # element (t, k) uses scale [k // 128, t]
    for t, k in [(0, 0), (4, 127), (2, 128), (3, 383)]:
        expected = torch.tensor(values[t, k].float().item() * scales[k // 128, t].item()).to(torch.bfloat16)
        assert got[t, k] == expected
    with pytest.raises(ValueError, match="needs scales"):
        moe.dequantize_hidden_states(values, scales.T.contiguous())


class _Recorder:
    """Stands in for flashinfer.fused_moe: records the calls, routes every token to the global experts 0..7."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def fused_topk_deepseek(self, *args: Any, **kw: Any) -> None:
        self.calls.append(("fused_topk_deepseek", args, kw))
        weights, ids = args[6], args[7]
        ids.copy_(torch.arange(8, dtype=torch.int32).expand_as(ids))
        weights.fill_(0.25)

    def cutlass_fused_moe(self, *args: Any, **kw: Any) -> list[torch.Tensor]:
        self.calls.append(("cutlass_fused_moe", args, kw))
        hidden = args[0]
        return [torch.zeros(hidden.shape[0], args[4].shape[1], dtype=torch.bfloat16)]


def _hopper(recorder: _Recorder) -> moe.MoeFp8BlockScaleHopper:
    opponent = object.__new__(moe.MoeFp8BlockScaleHopper)  # skips the flashinfer import and build checks
    opponent.fused_moe, opponent.name, opponent.routing = recorder, "test", None
    return opponent


def _inputs(
    offset: int, tokens: int = 3, hidden: int = 256, inter: int = 128, local: int = 32
) -> dict[str, Any]:
    values, scales = _fp8_hidden(tokens, hidden, seed=1)
    return {
        "routing_logits": torch.randn(tokens, 256),
        "routing_bias": torch.randn(256).to(torch.bfloat16),
        "hidden_states": values,
        "hidden_states_scale": scales,
        "gemm1_weights": torch.zeros(local, 2 * inter, hidden).to(torch.float8_e4m3fn),
        "gemm1_weights_scale": torch.rand(local, 2 * inter // 128, hidden // 128),
        "gemm2_weights": torch.zeros(local, hidden, inter).to(torch.float8_e4m3fn),
        "gemm2_weights_scale": torch.rand(local, hidden // 128, inter // 128),
        "local_expert_offset": offset,
        "routed_scaling_factor": 2.5,
    }


def test_plan_converts_once_and_the_call_runs_routing_then_the_cutlass_moe() -> None:
    recorder, inputs = _Recorder(), _inputs(offset=192)
    opponent = _hopper(recorder)
    call = opponent.plan(inputs)
    assert recorder.calls == []  # plan only prepares
    out = call()
    assert isinstance(out, torch.Tensor) and out.shape == (3, 256) and out.dtype == torch.bfloat16
    (name1, route, route_kw), (name2, args, kw) = recorder.calls
    assert name1 == "fused_topk_deepseek" and name2 == "cutlass_fused_moe"
    # routing: the definition's logits and bf16 bias as given, 8 groups, top 4, top 8, the scaling factor
    assert route[0] is inputs["routing_logits"] and route[1] is inputs["routing_bias"]
    assert route[2:6] == (8, 4, 8, 2.5) and route_kw == {}
    weights, ids = route[6], route[7]
    assert (
        weights.dtype == torch.float32 and ids.dtype == torch.int32 and ids.shape == weights.shape == (3, 8)
    )
    assert opponent.routing is not None and opponent.routing[0] is weights and opponent.routing[1] is ids
    # the MoE: bf16 dequantized activations, the routing buffers, the weights and block scales unchanged
    hidden = moe.dequantize_hidden_states(inputs["hidden_states"], inputs["hidden_states_scale"])
    assert args[0].dtype == torch.bfloat16 and torch.equal(args[0], hidden)
    assert args[1] is ids and args[2] is weights
    assert args[3] is inputs["gemm1_weights"] and args[4] is inputs["gemm2_weights"]
    assert args[5] == torch.bfloat16
    assert args[6][0] is inputs["gemm1_weights_scale"] and args[6][1] is inputs["gemm2_weights_scale"]
    assert kw == {"ep_size": 8, "ep_rank": 6, "use_deepseek_fp8_block_scale": True}
    # a second call reuses what plan prepared
    call()
    assert recorder.calls[3][1][0] is args[0]


def test_plan_refuses_an_offset_the_expert_parallel_split_cannot_express() -> None:
    with pytest.raises(ValueError, match="local_expert_offset 16"):
        _hopper(_Recorder()).plan(_inputs(offset=16))


def test_the_reference_reads_gemm1_as_linear_half_then_silu_half() -> None:
    """The order cutlass_fused_moe computes (silu of rows I..2I-1 times rows 0..I-1) is the definition's."""
    ref = _reference()
    hidden, inter = 128, 128
    inputs = _inputs(offset=0, tokens=1, hidden=hidden, inter=inter, local=32)
    inputs["routing_logits"] = torch.full((1, 256), -10.0)
    inputs["routing_logits"][0, :8] = 10.0  # experts 0..7, all local at offset 0
    inputs["routing_bias"] = torch.zeros(256, dtype=torch.bfloat16)
    inputs["hidden_states"] = torch.ones(1, hidden).to(torch.float8_e4m3fn)
    inputs["hidden_states_scale"] = torch.ones(1, 1)
    w1 = torch.zeros(32, 2 * inter, hidden)
    w1[:, :inter, 0] = 1.0  # linear half: 1
    w1[:, inter:, 0] = 2.0  # silu half: silu(2)
    inputs["gemm1_weights"] = w1.to(torch.float8_e4m3fn)
    inputs["gemm1_weights_scale"] = torch.ones(32, 2, 1)
    w2 = torch.zeros(32, hidden, inter)
    w2[:, :, 0] = 1.0
    inputs["gemm2_weights"] = w2.to(torch.float8_e4m3fn)
    inputs["gemm2_weights_scale"] = torch.ones(32, 1, 1)
    out = ref.run(*inputs.values())
    silu2 = 2.0 / (1.0 + torch.exp(torch.tensor(-2.0))).item()
    assert torch.allclose(out.float(), torch.full((1, hidden), 2.5 * silu2 * 1.0), rtol=1e-2)


def test_make_refuses_gpus_other_than_hopper_and_blackwell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    with pytest.raises(OpponentUnavailable, match="sm_80"):
        moe.make("flashinfer_moe_fp8_block_scale", torch.device("cuda", 0))


@pytest.mark.skipif(importlib.util.find_spec("flashinfer") is not None, reason="flashinfer is installed")
def test_hopper_without_flashinfer_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    with pytest.raises(OpponentUnavailable, match="flashinfer is not importable"):
        moe.make("flashinfer_moe_fp8_block_scale", torch.device("cuda", 0))


def test_hopper_refuses_an_unbuilt_cutlass_module_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(fused_moe=SimpleNamespace(fused_topk_deepseek=None, cutlass_fused_moe=None))
    monkeypatch.setattr(moe, "import_flashinfer", lambda: fake)
    monkeypatch.setattr(torch.version, "cuda", "12.9")
    monkeypatch.setattr(moe, "cutlass_moe_build_problem", lambda: "module fused_moe_90 is not built")
    monkeypatch.delenv(moe.JIT_ENV, raising=False)
    with pytest.raises(OpponentUnavailable, match="fused_moe_90 is not built.*KSEARCH_FLASHINFER_MOE_JIT=1"):
        moe.MoeFp8BlockScaleHopper("n", torch.device("cuda", 0))
    monkeypatch.setenv(moe.JIT_ENV, "1")
    opponent = moe.MoeFp8BlockScaleHopper("n", torch.device("cuda", 0))
    assert "cutlass_fused_moe" in opponent.library
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    with pytest.raises(OpponentUnavailable, match="CUDA 12.8"):
        moe.MoeFp8BlockScaleHopper("n", torch.device("cuda", 0))
