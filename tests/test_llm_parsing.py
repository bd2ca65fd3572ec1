"""Parsing of realistic model answers (JSON and code files) and token/cost accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from pydantic import BaseModel

from ksearch_agent.llm.parsing import ParseError, extract_code_files, extract_json, parse_model
from ksearch_agent.llm.usage import DEFAULT_PRICES, PriceTable, UsageLedger

# ------------------------------------------------------------------------------------------------ JSON


def test_plain_json_answer_is_parsed() -> None:
    assert extract_json(' {"a": 1, "b": [2, 3]}\n') == {"a": 1, "b": [2, 3]}


def test_json_embedded_in_prose_is_found() -> None:
    text = 'Sure! Here is my plan: {"action": "edit", "node": 3} Let me know if that works.'
    assert extract_json(text) == {"action": "edit", "node": 3}


def test_json_fence_is_preferred_over_braces_in_prose() -> None:
    text = 'I will use {tile sizes} as before.\n\n```json\n{"block": 128}\n```\nDone.'
    assert extract_json(text) == {"block": 128}


def test_trailing_commas_and_line_comments_are_repaired() -> None:
    text = '```json\n{\n  "a": 1, // first\n  "b": [1, 2, 3,],\n  "url": "http://x.org/a,}",\n}\n```'
    assert extract_json(text) == {"a": 1, "b": [1, 2, 3], "url": "http://x.org/a,}"}


def test_repair_keeps_empty_strings_intact() -> None:
    assert extract_json('{"a": "", "b": "", // note\n}') == {"a": "", "b": ""}


def test_python_literals_outside_strings_become_json() -> None:
    assert extract_json('{"ok": True, "err": None, "note": "True None", "f": False}') == {
        "ok": True,
        "err": None,
        "note": "True None",
        "f": False,
    }


def test_braces_and_quotes_inside_strings_do_not_end_the_object() -> None:
    text = (
        'Result: {"code": "if (x) { y[\\"k\\"] = \'}\'; }", "inner": {"d": [1, {"e": "]"}]}} trailing prose }'
    )
    assert extract_json(text) == {"code": "if (x) { y[\"k\"] = '}'; }", "inner": {"d": [1, {"e": "]"}]}}


def test_array_in_prose_is_returned() -> None:
    assert extract_json('The candidates are [{"id": 1}, {"id": 2}] in order.') == [{"id": 1}, {"id": 2}]


def test_unparseable_span_is_skipped_for_a_later_one() -> None:
    assert extract_json('Use {block sizes} from before; answer: {"x": 2}') == {"x": 2}


def test_many_unclosed_brackets_before_the_json_do_not_hide_it() -> None:
    text = "x = [a[i] for i in range(n)] {\n" * 5000 + 'Verdict: {"ok": true}'
    assert extract_json(text) == {"ok": True}


def test_raw_newlines_inside_strings_are_tolerated() -> None:
    assert extract_json('{"code": "def run(x):\n    return x"}') == {"code": "def run(x):\n    return x"}


def test_garbage_raises_parse_error_saying_no_json_found() -> None:
    with pytest.raises(ParseError, match="no JSON object found"):
        extract_json("I am sorry, I cannot help with that.")


def test_broken_json_reports_line_and_column() -> None:
    with pytest.raises(ParseError, match=r"JSON parse error at line 3 col \d+"):
        extract_json('Answer:\n```json\n{"a": 1 "b": 2}\n```')


class Step(BaseModel):
    name: str
    repeats: int


class Plan(BaseModel):
    goal: str
    steps: list[Step]


def test_parse_model_validates_extracted_json() -> None:
    plan = parse_model(
        'Plan:\n```json\n{"goal": "faster", "steps": [{"name": "tile", "repeats": 2}]}\n```', Plan
    )
    assert plan == Plan(goal="faster", steps=[Step(name="tile", repeats=2)])


def test_parse_model_skips_an_example_snippet_that_does_not_validate() -> None:
    text = 'Format is {"like": "this"}. My answer: {"goal": "g", "steps": []}'
    assert parse_model(text, Plan).goal == "g"


def test_parse_model_error_lists_field_paths() -> None:
    with pytest.raises(ParseError) as err:
        parse_model('{"steps": [{"name": "tile", "repeats": "many"}]}', Plan)
    message = str(err.value)
    assert "goal: missing field" in message
    assert "steps.0.repeats:" in message
    assert "Plan" in message


def test_parse_model_without_json_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="no JSON object found"):
        parse_model("nothing here", Plan)


# ------------------------------------------------------------------------------------------ code files

RUN_V1 = "import torch\n\ndef run(x):\n    return x\n"
RUN_V2 = "import torch\n\ndef run(x):\n    return x * 1\n"
KERNEL = "#include <cuda_runtime.h>\n__global__ void scale(float* x) { x[threadIdx.x] *= 2.0f; }\n"
HOST = 'from pathlib import Path\nSRC = (Path(__file__).parent / "kernel.cu").read_text()\n\ndef run(x):\n    return x\n'


def test_single_python_fence_becomes_the_entry() -> None:
    assert extract_code_files(f"Here you go:\n```python\n{RUN_V1}```\n", "triton") == {"run.py": RUN_V1}


def test_last_of_two_python_blocks_defining_run_wins() -> None:
    text = (
        f"First attempt:\n```python\n{RUN_V1}```\nOops, fixed version:\n```py\n{RUN_V2}```\nThis is faster."
    )
    assert extract_code_files(text, "triton") == {"run.py": RUN_V2}


def test_usage_example_block_without_run_is_ignored() -> None:
    text = f"```python\n{RUN_V1}```\nUsage:\n```python\nout = run(torch.ones(4))\n```"
    assert extract_code_files(text, "python") == {"run.py": RUN_V1}


def test_custom_kernel_counts_as_entry_point() -> None:
    source = "def custom_kernel(data):\n    return data\n"
    assert extract_code_files(f"```python\n{source}```", "python", entry="submission.py") == {
        "submission.py": source
    }


def test_file_names_come_from_the_info_string() -> None:
    text = f'```python run.py\n{HOST}```\n```cuda title="kernel.cu"\n{KERNEL}```'
    assert extract_code_files(text, "cuda") == {"run.py": HOST, "kernel.cu": KERNEL}


def test_file_names_come_from_the_line_before_the_fence() -> None:
    helper = "def helper():\n    return 1\n"
    text = (
        f"**kernel.cu**\n```cpp\n{KERNEL}```\n"
        f"File: utils.py\n```python\n{helper}```\n"
        f"`run.py`\n```python\n{HOST}```\n"
    )
    assert extract_code_files(text, "cuda") == {"run.py": HOST, "kernel.cu": KERNEL, "utils.py": helper}


def test_single_named_python_file_defining_run_becomes_the_entry() -> None:
    assert extract_code_files(f"solution.py:\n```python\n{RUN_V1}```", "triton") == {"run.py": RUN_V1}


def test_file_comment_on_first_line_names_the_file_and_is_kept() -> None:
    source = "// file: ops.cu\n" + KERNEL
    text = f"```cuda\n{source}```\n```python\n{HOST}```"
    assert extract_code_files(text, "cuda") == {"run.py": HOST, "ops.cu": source}


def test_bare_file_name_comment_names_the_file() -> None:
    source = "# run.py\n" + RUN_V1
    helper = "# helpers.py\ndef helper():\n    return 1\n"
    assert extract_code_files(f"```python\n{helper}```\n```python\n{source}```", "python") == {
        "run.py": source,
        "helpers.py": helper,
    }


def test_cuda_answer_yields_kernel_cu_and_host_run_py() -> None:
    text = f"The kernel:\n```cuda\n{KERNEL}```\nAnd the host code:\n```python\n{HOST}```\n"
    assert extract_code_files(text, "cuda") == {"run.py": HOST, "kernel.cu": KERNEL}


def test_unnamed_cuda_blocks_get_numbered_names() -> None:
    other = "__global__ void add(float* x) { x[0] += 1.0f; }\n"
    text = f"```cu\n{KERNEL}```\n```\n{other}```\n```python\n{RUN_V1}```"
    assert extract_code_files(text, "cuda") == {"run.py": RUN_V1, "kernel.cu": KERNEL, "kernel_1.cu": other}


def test_cuda_answer_without_cuda_source_is_rejected() -> None:
    with pytest.raises(ParseError, match="no CUDA source"):
        extract_code_files(f"```python\n{RUN_V1}```", "cuda")


def test_answer_without_code_raises_parse_error_with_guidance() -> None:
    with pytest.raises(ParseError, match=r"answer with one ```python block containing the complete run.py"):
        extract_code_files("I think we should increase the block size to 256.", "triton")


def test_block_without_run_raises_parse_error_naming_run() -> None:
    with pytest.raises(ParseError, match=r"no code block defining run\(\.\.\.\) found"):
        extract_code_files("```python\ndef helper():\n    pass\n```", "triton")


def test_windows_line_endings_are_normalised() -> None:
    text = f"```python\n{RUN_V1}```\n".replace("\n", "\r\n")
    assert extract_code_files(text, "python") == {"run.py": RUN_V1}


def test_unfenced_python_answer_defining_run_is_accepted() -> None:
    assert extract_code_files(RUN_V1, "python") == {"run.py": RUN_V1}


def test_names_with_directories_or_leading_dots_fall_back_to_default_names() -> None:
    text = f"```python src/run.py\n{RUN_V1}```\n.hidden.cu\n```cuda\n{KERNEL}```"
    assert extract_code_files(text, "cuda") == {"run.py": RUN_V1, "kernel.cu": KERNEL}


def test_rejected_names_are_mentioned_in_the_error() -> None:
    with pytest.raises(ParseError, match="src/helper.py"):
        extract_code_files("```python src/helper.py\ndef helper():\n    pass\n```", "python")


def test_shell_and_json_blocks_are_not_source_files() -> None:
    text = f"run.py\n```bash\npython run.py\n```\n```json\n{{}}\n```\n```python\n{RUN_V1}```"
    assert extract_code_files(text, "python") == {"run.py": RUN_V1}


# ------------------------------------------------------------------------------------------ usage/costs


def test_price_table_matches_longest_known_prefix() -> None:
    table = PriceTable()
    assert table.lookup("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.lookup("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert table.lookup("openai/gpt-4.1-mini") == DEFAULT_PRICES["gpt-4.1-mini"]


def test_price_table_cost_is_per_million_tokens() -> None:
    table = PriceTable({"m": (1.0, 2.0)}, include_defaults=False)
    assert table.cost("m", 1_000_000, 500_000) == pytest.approx(2.0)


def test_price_table_unknown_model_has_no_cost() -> None:
    assert PriceTable().cost("llama-3-70b", 100, 100) is None
    assert PriceTable().cost("gpt-4oo", 100, 100) is None


def test_price_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o": [1, 4], "local-qwen": [0, 0]}))
    table = PriceTable.from_file(path)
    assert table.lookup("gpt-4o") == (1.0, 4.0)
    assert table.cost("local-qwen-32b", 1000, 1000) == 0.0
    assert table.lookup("gpt-5") == DEFAULT_PRICES["gpt-5"]


def test_bad_price_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o": [1, 4], "broken": "cheap"}))
    with pytest.raises(ValueError, match=r"prices\.json.*'broken'"):
        PriceTable.from_file(path)


def _reply(input_tokens: int, output_tokens: int) -> AIMessage:
    return AIMessage(
        content="ok",
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )


def test_ledger_totals_sum_over_nodes_and_calls() -> None:
    prices = PriceTable({"m": (1.0, 10.0)}, include_defaults=False)
    ledger = UsageLedger()
    ledger.record("plan", _reply(1000, 100), "m", prices)
    ledger.record("plan", _reply(2000, 200), "m", prices)
    ledger.record("write", _reply(500, 1000), "m", prices)
    assert ledger.by_node["plan"].calls == 2
    assert (ledger.input_tokens, ledger.output_tokens, ledger.total_tokens) == (3500, 1300, 4800)
    assert ledger.cost_usd == pytest.approx((3500 * 1.0 + 1300 * 10.0) / 1e6)
    assert ledger.cost_complete


def test_ledger_counts_calls_without_usage_and_flags_unknown_prices() -> None:
    ledger = UsageLedger()
    ledger.record("plan", None, "gpt-4o", PriceTable())
    ledger.record("plan", AIMessage(content="x"), "mystery-model", PriceTable())
    assert ledger.by_node["plan"].calls == 2
    assert ledger.total_tokens == 0
    assert ledger.cost_usd == 0.0
    assert not ledger.cost_complete


def test_ledger_round_trips_through_a_plain_dict() -> None:
    ledger = UsageLedger()
    ledger.record("plan", _reply(10, 20), "gpt-4o", PriceTable())
    restored = UsageLedger.model_validate(json.loads(json.dumps(ledger.model_dump())))
    assert restored == ledger
    assert restored.total_tokens == 30


def test_over_budget_reports_tokens_and_cost() -> None:
    prices = PriceTable({"m": (1.0, 1.0)}, include_defaults=False)
    ledger = UsageLedger()
    ledger.record("plan", _reply(600_000, 400_000), "m", prices)
    assert ledger.over_budget(None, None) is None
    assert ledger.over_budget(2_000_000, 5.0) is None
    assert "token budget" in (ledger.over_budget(1_000_000, None) or "")
    assert "cost budget" in (ledger.over_budget(None, 0.5) or "")
