"""The model caller and the LLM policy's handling of what servers do, without a network: cut-off answers,
which 400 answers mean a refused parameter, and what endpoint failures say."""

from __future__ import annotations

import httpx
import openai
import pytest
from graph_script import GOOD, INITIAL, code_answer
from langchain_core.messages import AIMessage
from scripted_model import ScriptedChatModel

from ksearch_agent.llm.endpoint import endpoint_error, refused_parameter
from ksearch_agent.llm.usage import UsageLedger
from ksearch_agent.llm_policy import LLMPolicy, tool_calls_of
from ksearch_agent.policy import CodeRequest
from ksearch_agent.task import load_task
from ksearch_agent.world_model import WorldModel

URL = "http://127.0.0.1:9/v1"


def _status_error(
    cls: type[openai.APIStatusError], status: int, message: str, param: str | None = None
) -> Exception:
    response = httpx.Response(status, request=httpx.Request("POST", URL + "/chat/completions"))
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return cls(message, response=response, body=body)


def _coder_request() -> CodeRequest:
    wm = WorldModel.from_initial(INITIAL)
    return CodeRequest(
        task=load_task("rmsnorm"),
        language="triton",
        action=wm.open_actions()[0],
        parent_files=None,
        parent_speedup=None,
    )


def _cut(text: str) -> AIMessage:
    return AIMessage(content=text, response_metadata={"finish_reason": "length"})


def test_code_cut_off_mid_file_is_asked_for_again_shorter() -> None:
    whole = code_answer(GOOD)
    model = ScriptedChatModel([_cut(whole[: len(whole) * 9 // 10]), whole])  # run() begun, not finished
    turn = LLMPolicy(model, "scripted").coder_turn(_coder_request(), UsageLedger())
    assert turn.files == {"run.py": GOOD}
    assert "cut off at the output-token limit" in str(model.calls[1][-1].content)


def test_code_cut_off_after_the_files_were_complete_is_used_as_is() -> None:
    model = ScriptedChatModel([_cut(code_answer(GOOD))])
    turn = LLMPolicy(model, "scripted").coder_turn(_coder_request(), UsageLedger())
    assert turn.files == {"run.py": GOOD} and model.remaining == 0


def test_unparseable_tool_arguments_become_calls_that_name_the_problem() -> None:
    reply = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "compile", "args": '{"files": {', "id": "c9", "error": "x", "type": "invalid_tool_call"}
        ],
    )
    (call,) = tool_calls_of(reply)
    assert call["id"] == "c9" and call["name"] == "compile"
    assert call["invalid"].startswith("the arguments are not valid JSON (Expecting")


def test_vllm_tool_refusal_without_param_is_read_from_the_message() -> None:
    exc = _status_error(
        openai.BadRequestError,
        400,
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser',
    )
    assert refused_parameter(exc, {"tools", "temperature"}) == "tools"
    assert refused_parameter(exc, {"temperature"}) is None  # not sent: not what was refused


def test_openai_param_field_names_the_refused_parameter() -> None:
    exc = _status_error(openai.BadRequestError, 400, "Unsupported value: 'temperature'", param="temperature")
    assert refused_parameter(exc, {"temperature", "response_format"}) == "temperature"


def test_context_overflow_and_other_400s_are_not_refused_parameters() -> None:
    too_long = _status_error(
        openai.BadRequestError, 400, "This model's maximum context length is 8192 tokens"
    )
    other = _status_error(openai.BadRequestError, 400, "messages must alternate")
    assert refused_parameter(too_long, {"tools", "response_format"}) is None
    assert refused_parameter(other, {"tools", "response_format", "temperature"}) is None
    assert endpoint_error(too_long, base_url=URL, model="m") is None


@pytest.mark.parametrize(
    ("cls", "status", "says"),
    [
        (openai.PermissionDeniedError, 403, "HTTP 403: refused the API key"),
        (openai.NotFoundError, 404, "HTTP 404: does not know this model"),
        (openai.InternalServerError, 503, "HTTP 503: kept failing on its side"),
    ],
)
def test_endpoint_failures_name_url_model_and_status(
    cls: type[openai.APIStatusError], status: int, says: str
) -> None:
    err = endpoint_error(_status_error(cls, status, "nope"), base_url=URL, model="m")
    assert err is not None and str(err).startswith(f"LLM endpoint {URL} (model m) answered {says}")
    assert err.status == status and "Server said: nope" in str(err)


def test_a_key_the_server_repeats_is_masked_in_the_error_even_one_the_run_never_read() -> None:
    key = "sk-proj-NeverRead-0123456789"  # in no variable this process read: masked as a key-like token
    err = endpoint_error(
        _status_error(openai.AuthenticationError, 401, f"Incorrect API key provided: {key}"),
        base_url=URL,
        model="m",
    )
    assert err is not None and str(err).endswith("Server said: Incorrect API key provided: ***")
    assert key not in repr(err)


def test_unknown_host_is_named_as_a_dns_failure() -> None:
    exc = openai.APIConnectionError(request=httpx.Request("POST", "http://no-such-host.invalid/v1"))
    exc.__cause__ = httpx.ConnectError("[Errno -2] Name or service not known")
    err = endpoint_error(exc, base_url="http://no-such-host.invalid/v1", model="m")
    assert err is not None and "does not resolve (DNS)" in str(err) and err.status is None
