"""The OpenAI-SDK client against an OpenAI-compatible HTTP server double: fallbacks, repair, errors, streaming."""

from __future__ import annotations

import pytest
from doubles import FakeOpenAIServer

from timemory import ConsolidationPlan, FactExtraction, LLMError, LLMOutputError
from timemory.providers import OpenAILLM, Usage
from timemory.providers._llm import openai_strict_subset, strict_json_schema

GOOD = '{"facts": [{"content": "The user likes tea.", "type": "preference"}]}'
ASK = [{"role": "user", "content": "I like tea"}]


def client(server: FakeOpenAIServer, **kw) -> OpenAILLM:
    return OpenAILLM.connect(api_key=None, base_url=server.base_url, model="m", max_retries=0, **kw)


def test_json_schema_rejected_falls_back_to_json_object_with_schema() -> None:
    def handler(body):
        if body["response_format"]["type"] == "json_schema":
            return 400, {"error": {"message": "response_format json_schema is not supported", "type": "invalid"}}
        return 200, GOOD

    with FakeOpenAIServer(handler) as server:
        llm = client(server)
        usage = Usage()
        out = llm.parse(ASK, FactExtraction, usage=usage)
        assert out.facts[0].content == "The user likes tea."
        assert [r["response_format"]["type"] for r in server.requests] == ["json_schema", "json_object"]
        assert server.requests[1]["response_format"]["schema"] == strict_json_schema(FactExtraction)
        assert usage.calls == 1 and usage.prompt_tokens == 11
        llm.parse(ASK, FactExtraction)  # remembered: no second rejected request
        assert len(server.requests) == 3


def test_invalid_json_gets_one_repair() -> None:
    answers = iter(["```json\n{\"facts\": [{\"content\": 3}]}\n```", GOOD])
    with FakeOpenAIServer(lambda body: (200, next(answers))) as server:
        usage = Usage()
        out = client(server).parse(ASK, FactExtraction, usage=usage)
        assert out.facts[0].type == "preference" and usage.calls == 2
        repair = server.requests[1]["messages"]
        assert repair[-2]["role"] == "assistant" and "could not be used" in repair[-1]["content"]


def test_invalid_twice_is_a_clear_error() -> None:
    with FakeOpenAIServer(lambda body: (200, "not json at all")) as server:
        with pytest.raises(LLMOutputError, match="after one repair"):
            client(server).parse(ASK, ConsolidationPlan)
        assert len(server.requests) == 2


def test_unreachable_server_is_an_llm_error() -> None:
    llm = OpenAILLM.connect(api_key=None, base_url="http://127.0.0.1:9/v1", model="m", max_retries=0, timeout=2)
    with pytest.raises(LLMError, match="Cannot reach"):
        llm.parse(ASK, FactExtraction)


def test_server_error_after_retries_is_an_llm_error() -> None:
    with FakeOpenAIServer(lambda body: (500, {"error": {"message": "boom"}})) as server:
        with pytest.raises(LLMError):
            llm = OpenAILLM.connect(api_key=None, base_url=server.base_url, model="m", max_retries=1)
            llm.parse(ASK, FactExtraction)
        assert len(server.requests) == 2  # the SDK's own retry


def test_streaming_yields_tokens() -> None:
    with FakeOpenAIServer(lambda body: (200, "hello there friend")) as server:
        usage = Usage()
        assert "".join(client(server).stream(ASK, usage=usage)).split() == ["hello", "there", "friend"]
        assert server.requests[0]["stream"] is True and usage.calls == 1
        assert "max_tokens" not in server.requests[0]  # no cap unless one is set


def test_a_reply_cap_is_sent_with_every_streamed_reply() -> None:
    with FakeOpenAIServer(lambda body: (200, "hello")) as server:
        list(client(server, max_reply_tokens=512).stream(ASK))
        assert server.requests[0]["max_tokens"] == 512


RAMBLE = "One two three. Four five 3.5 six. Seven eight e.g. nine. Ten eleven."


def test_a_long_reply_ends_with_the_sentence_under_way_past_its_limit() -> None:
    with FakeOpenAIServer(lambda body: (200, RAMBLE)) as server:
        usage = Usage()
        reply = "".join(client(server, reply_sentence_after=4).stream(ASK, usage=usage))
        # the 4th token is "five": the sentence ends at "six.", not at "3.5" (no space after its point)
        assert reply.split() == ["One", "two", "three.", "Four", "five", "3.5", "six."]
        assert usage.calls == 1 and usage.completion_tokens == 7  # counted here: the server's count never came
        assert "".join(client(server, reply_sentence_after=8).stream(ASK)).split()[-1] == "nine."
        assert "".join(client(server).stream(ASK)).split() == RAMBLE.split()  # no limit: the model decides


def test_a_structured_call_sends_the_request_s_schema_within_openai_s_strict_subset() -> None:
    from timemory.core import request
    from timemory.core._answers import consolidation_schema

    schema = consolidation_schema([0], [1, 2])
    with FakeOpenAIServer(lambda body: (200, '{"decisions": []}')) as server:
        client(server).parse(ASK, request(ConsolidationPlan, schema), max_tokens=300)
        sent = server.requests[0]
        assert sent["response_format"]["json_schema"]["schema"] == openai_strict_subset(schema)
        assert sent["max_tokens"] == 300


def test_strict_schema_has_no_refs_and_requires_everything() -> None:
    schema = strict_json_schema(ConsolidationPlan)
    assert "$defs" not in schema and "$ref" not in str(schema)
    item = schema["properties"]["decisions"]["items"]
    assert item["additionalProperties"] is False
    assert set(item["required"]) == {"fact", "action", "memory_id", "content", "reason"}


def test_a_retried_request_is_sampled_differently() -> None:
    from timemory.providers._llm import resampled

    with FakeOpenAIServer(lambda body: (200, GOOD)) as server:
        llm = client(server)
        llm.parse(ASK, FactExtraction)
        resampled(llm, 1).parse(ASK, FactExtraction)  # the first try is the model as configured
        resampled(llm, 3).parse(ASK, FactExtraction)
    first, same, third = server.requests
    assert first["temperature"] == same["temperature"] == 0 and "seed" not in first and "seed" not in same
    assert third["seed"] == 3 and third["temperature"] == pytest.approx(0.6)
    assert llm.temperature == 0 and llm.seed is None  # the configured model is unchanged
