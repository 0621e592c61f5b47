"""The LLM nodes in workflows: loading, generating, encoding, judging, rewriting, and the flagship flow."""

from __future__ import annotations

import json

import pytest

from conftest import link, workflow
from llm_fixtures import MockServer, ScriptedBackend, chat_answer, start_mock_server
from nodegraph.llm import LLMSpec
from nodegraph.nodes.llm import check_rewrite, clean_rewrite

SCRIPTED_URL = "http://127.0.0.1:9/v1"  # never contacted: the scripted backend is put in the model manager first
GOOD_PROMPT = ("a golden retriever puppy chasing a red ball across a sunlit lawn, low camera angle, shallow depth of "
               "field, warm late-afternoon light")
REWRITTEN = "a small brown dog on a green lawn in a park, warm evening light, soft shadows, wide shot, watercolor"


def scripted(executor, answers) -> ScriptedBackend:
    """Put a scripted backend in the executor's model manager under LoadLLM's key for SCRIPTED_URL."""
    backend = ScriptedBackend(answers)
    executor.models.load(LLMSpec("openai", SCRIPTED_URL, model="scripted").key, lambda: backend)
    return backend


def load_llm(**inputs) -> dict:
    return {"type": "LoadLLM", "inputs": {"source": "openai-compatible", "base_url": SCRIPTED_URL, "model": "scripted",
                                          **inputs}}


def flagship(prompt: str, llm_node: dict | None = None) -> dict:
    """Text -> LLMEncode -> PromptQuality -> QualityBranch -> LLMRewrite (low) -> Merge -> ShowText."""
    return workflow({
        "prompt": {"type": "Text", "inputs": {"text": prompt}},
        "encode": {"type": "LLMEncode", "inputs": {"text": link("prompt", "text")}},
        "quality": {"type": "PromptQuality", "inputs": {"prompt": link("prompt", "text"),
                                                         "embedding": link("encode", "embedding")}},
        "gate": {"type": "QualityBranch", "inputs": {"prompt": link("prompt", "text"), "score": link("quality", "score")}},
        "llm": llm_node or load_llm(),
        "rewrite": {"type": "LLMRewrite", "inputs": {"llm": link("llm", "llm"), "prompt": link("gate", "low")}},
        "merge": {"type": "Merge", "inputs": {"first": link("gate", "high"), "second": link("rewrite", "prompt")}},
        "show": {"type": "ShowText", "inputs": {"text": link("merge", "value")}},
        "reasons": {"type": "ShowText", "inputs": {"text": link("quality", "reasons")}},
    })


# --- the flagship flow -------------------------------------------------------------------


def test_flow_good_prompt_skips_rewrite(executor, events, monkeypatch):
    # The embedded LLM is not cached and may not be fetched: loading it would fail the run.
    monkeypatch.setenv("NODEGRAPH_OFFLINE", "1")
    result = executor.run(flagship(GOOD_PROMPT, {"type": "LoadLLM", "inputs": {"source": "smollm2"}}), on_event=events)

    assert result.status == "succeeded", result.error
    assert result.outputs["show"] == {"text": [GOOD_PROMPT]}
    assert result.nodes["rewrite"].status == "skipped"
    assert result.nodes["rewrite"].reason == "inactive_branch"
    assert result.nodes["llm"].status == "skipped"
    assert result.nodes["llm"].reason == "not_needed"
    assert not any(entry["key"].startswith("llm:") for entry in executor.models.loaded())


def test_flow_weak_prompt_is_rewritten(executor, events):
    backend = scripted(executor, [REWRITTEN])
    result = executor.run(flagship("dog"), on_event=events)

    assert result.status == "succeeded", result.error
    assert result.outputs["show"] == {"text": [REWRITTEN]}
    assert result.nodes["rewrite"].status == "executed"
    assert result.nodes["llm"].status == "executed"
    assert backend.calls[0]["prompt"] == ("Describe a picture of dog in one sentence in English, for an image generator. "
                                          "Say where it is, the light, the colors and the style. Answer with the "
                                          "description only, at most 60 words.")
    assert backend.calls[0]["system"] == ""
    reasons = result.outputs["reasons"]["text"][0].splitlines()
    assert reasons[0] == "too short: 1 word"


def test_chinese_seed_prompt_goes_to_the_rewrite(executor, events):
    scripted(executor, [REWRITTEN])
    result = executor.run(flagship("一只可爱的小狗在草地上玩耍。"), on_event=events)
    assert result.status == "succeeded", result.error
    assert result.outputs["reasons"]["text"][0].splitlines()[0] == "written in Chinese; the image model reads English"
    assert result.nodes["rewrite"].status == "executed"


def test_rerun_serves_the_rewrite_from_the_cache(executor, events):
    backend = scripted(executor, [REWRITTEN])
    executor.run(flagship("dog"))
    again = executor.run(flagship("dog"), on_event=events)
    assert again.nodes["rewrite"].status == "cached"
    assert len(backend.calls) == 1


def test_empty_and_blank_prompts_score_zero_without_crashing(executor):
    for text in ("", "   \n\t  "):
        document = workflow({
            "prompt": {"type": "Text", "inputs": {"text": text}},
            "quality": {"type": "PromptQuality", "inputs": {"prompt": link("prompt", "text")}},
            "score": {"type": "ShowText", "inputs": {"text": link("quality", "score")}},
            "reasons": {"type": "ShowText", "inputs": {"text": link("quality", "reasons")}},
        })
        result = executor.run(document)
        assert result.status == "succeeded"
        assert result.outputs["score"] == {"text": ["0"]}
        assert result.outputs["reasons"] == {"text": ["empty prompt: nothing to draw"]}


# --- LoadLLM -------------------------------------------------------------------------------


def test_load_llm_unload_after_use(executor):
    backend = scripted(executor, ["a sentence"])
    key = LLMSpec("openai", SCRIPTED_URL, model="scripted").key
    document = workflow({
        "llm": load_llm(unload_after_use=True),
        "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "say something"}},
        "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
    })
    result = executor.run(document)
    assert result.status == "succeeded", result.error
    assert backend.calls and not executor.models.is_loaded(key)


def test_load_llm_rejects_key_as_env_name(executor, events):
    document = workflow({
        "llm": load_llm(api_key_env="sk-abc123-secret"),
        "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "hi"}},
        "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
    })
    result = executor.run(document, on_event=events)
    assert result.status == "failed"
    assert result.error["message"] == ("input 'api_key_env' must be the name of an environment variable (letters, "
                                       "digits, _), not the key itself; put the key in that variable")


def test_load_llm_without_model_name_for_a_server(executor):
    document = workflow({
        "llm": {"type": "LoadLLM", "inputs": {"source": "openai-compatible"}},
        "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "hi"}},
        "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
    })
    result = executor.run(document)
    assert result.error["node"] == "llm"
    assert result.error["message"] == ("input 'model' is empty; an OpenAI-compatible server needs the model name, "
                                       "e.g. qwen2.5:7b")


def test_load_llm_offline_names_command(executor, monkeypatch, tmp_path):
    monkeypatch.setenv("NODEGRAPH_OFFLINE", "1")
    # An empty cache of its own: another test in the session may have pulled the model.
    executor.models.cache_dir = tmp_path / "empty-cache"
    document = workflow({
        "llm": {"type": "LoadLLM", "inputs": {}},
        "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "hi"}},
        "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
    })
    result = executor.run(document)
    assert result.error["node"] == "llm"
    assert result.error["error_type"] == "ModelUnavailable"
    assert "Run `nodegraph models pull smollm2`" in result.error["message"]


# --- LLMGenerate against a mock server; the key stays out of events and logs -----------------


def test_generate_mock_server_hides_key(executor, events, monkeypatch, caplog):
    monkeypatch.setenv("NODEGRAPH_TEST_KEY", "sk-very-secret-987")
    mock = MockServer(script=[(500, "oops"), chat_answer("<think>plan the answer</think>Hello there.")])
    stop = start_mock_server(mock)
    try:
        document = workflow({
            "llm": {"type": "LoadLLM", "inputs": {"source": "openai-compatible", "base_url": mock.url, "model": "m",
                                                  "api_key_env": "NODEGRAPH_TEST_KEY", "retries": 1}},
            "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "greet", "seed": 3}},
            "text": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
            "reasoning": {"type": "ShowText", "inputs": {"text": link("generate", "reasoning")}},
        })
        with caplog.at_level("DEBUG"):
            result = executor.run(document, on_event=events)
    finally:
        stop()
    assert result.status == "succeeded", result.error
    assert result.outputs["text"] == {"text": ["Hello there."]}
    assert result.outputs["reasoning"] == {"text": ["plan the answer"]}
    assert mock.requests[-1]["headers"]["Authorization"] == "Bearer sk-very-secret-987"
    assert events.names("generate") == ["node.started", "node.finished"]  # the event log did receive the events
    assert "sk-very-secret-987" not in json.dumps(events, default=str)
    assert "sk-very-secret-987" not in caplog.text


def test_generate_failure_names_the_url_and_status(executor):
    mock = MockServer(script=[(502, "bad gateway")])
    stop = start_mock_server(mock)
    try:
        document = workflow({
            "llm": {"type": "LoadLLM", "inputs": {"source": mock.url, "model": "m", "retries": 0}},
            "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "greet"}},
            "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
        })
        result = executor.run(document)
    finally:
        stop()
    assert result.error["node"] == "generate"
    assert result.error["message"] == (f"{mock.url}/chat/completions returned HTTP 502: bad gateway "
                                       "(gave up after 1 attempt)")


def test_generate_cache_follows_seed(executor):
    backend = scripted(executor, lambda prompt, system, seed: f"answer {seed}")

    def run(seed: int):
        return executor.run(workflow({
            "llm": load_llm(),
            "generate": {"type": "LLMGenerate", "inputs": {"llm": link("llm", "llm"), "prompt": "hi", "seed": seed}},
            "show": {"type": "ShowText", "inputs": {"text": link("generate", "text")}},
        }))

    assert run(1).outputs["show"] == {"text": ["answer 1"]}
    assert run(1).nodes["generate"].status == "cached"
    assert run(2).outputs["show"] == {"text": ["answer 2"]}
    assert [call["seed"] for call in backend.calls] == [1, 2]


# --- LLMEncode ------------------------------------------------------------------------------


def test_encode_with_minilm_and_with_an_llm(executor):
    scripted(executor, ["unused"])
    document = workflow({
        "llm": load_llm(),
        "minilm": {"type": "LLMEncode", "inputs": {"text": "a red fox"}},
        "hidden": {"type": "LLMEncode", "inputs": {"text": "a red fox", "encoder": "llm", "llm": link("llm", "llm")}},
        "show_minilm": {"type": "ShowText", "inputs": {"text": link("minilm", "embedding")}},
        "show_hidden": {"type": "ShowText", "inputs": {"text": link("hidden", "embedding")}},
    })
    result = executor.run(document)
    assert result.status == "succeeded", result.error
    minilm = result.values["minilm"]["embedding"]
    assert len(minilm.vector) == 384
    assert minilm.text == "a red fox"
    assert minilm.encoder == "minilm"
    assert result.values["hidden"]["embedding"].vector == [9.0, 1.0]


def test_encode_with_minilm_never_evaluates_a_connected_llm(executor, monkeypatch):
    monkeypatch.setenv("NODEGRAPH_OFFLINE", "1")  # loading the embedded LLM would fail
    document = workflow({
        "llm": {"type": "LoadLLM", "inputs": {}},
        "encode": {"type": "LLMEncode", "inputs": {"text": "a red fox", "llm": link("llm", "llm")}},
        "show": {"type": "ShowText", "inputs": {"text": link("encode", "embedding")}},
    })
    result = executor.run(document)
    assert result.status == "succeeded", result.error
    assert result.nodes["llm"].reason == "not_needed"


# --- PromptQuality with an LLM that answers "No" to everything -------------------------------------


def test_quality_with_a_naysaying_llm_keeps_the_score(executor):
    scripted(executor, ["No."])
    nodes = {
        "llm": load_llm(),
        "with_llm": {"type": "PromptQuality", "inputs": {"prompt": GOOD_PROMPT, "llm": link("llm", "llm")}},
        "without": {"type": "PromptQuality", "inputs": {"prompt": GOOD_PROMPT}},
        "a": {"type": "ShowText", "inputs": {"text": link("with_llm", "score")}},
        "b": {"type": "ShowText", "inputs": {"text": link("without", "score")}},
        "c": {"type": "ShowText", "inputs": {"text": link("with_llm", "reasons")}},
    }
    result = executor.run(workflow(nodes))
    assert result.status == "succeeded", result.error
    assert result.values["with_llm"]["score"] == result.values["without"]["score"] >= 0.6
    assert result.outputs["c"]["text"][0].splitlines()[-1] == "LLM critique: No."


# --- LLMRewrite guards ----------------------------------------------------------------------------


def rewrite_document(**inputs) -> dict:
    return workflow({
        "llm": load_llm(),
        "rewrite": {"type": "LLMRewrite", "inputs": {"llm": link("llm", "llm"), "prompt": "dog", **inputs}},
        "prompt": {"type": "ShowText", "inputs": {"text": link("rewrite", "prompt")}},
        "ok": {"type": "ShowText", "inputs": {"text": link("rewrite", "ok")}},
    })


@pytest.mark.parametrize("bad_answer", [
    "",
    "   ",
    "I'm sorry, but I can't help with that request.",
    "一只棕色的小狗在公园的草地上，傍晚温暖的光线",
    "dog",
    "Say where it is, the light, the colors and the style.",
    "<think>I should describe a dog</think>",
    "a majestic deer in a misty forest at dawn, soft light, watercolor",
    "a fluffy white dog, a fluffy white tail, a fluffy white nose, a fluffy white coat",
])
def test_rewrite_guard_failure_passes_input(executor, events, bad_answer):
    backend = scripted(executor, [bad_answer])
    result = executor.run(rewrite_document(seed=10), on_event=events)

    assert result.status == "succeeded", result.error
    assert result.outputs["prompt"] == {"text": ["dog"]}
    assert result.outputs["ok"] == {"text": ["false"]}
    assert [call["seed"] for call in backend.calls] == [10, 11, 12]
    warnings = [event["message"] for event in events.of("node.warning")]
    assert len(warnings) == 1
    assert warnings[0].startswith("every rewrite failed its checks (seed 10: ")
    assert warnings[0].endswith("; passing the input prompt on unchanged")


def test_rewrite_retries_next_seed(executor):
    backend = scripted(executor, ["I cannot do that.", "Here is the rewritten prompt: \"" + REWRITTEN + "\""])
    result = executor.run(rewrite_document(seed=4))
    assert result.outputs["prompt"] == {"text": [REWRITTEN]}
    assert result.outputs["ok"] == {"text": ["true"]}
    assert [call["seed"] for call in backend.calls] == [4, 5]


def test_rewrite_custom_instruction_is_system(executor):
    backend = scripted(executor, [REWRITTEN])
    result = executor.run(rewrite_document(instruction="Write a {language} prompt of {max_words} words or fewer.",
                                           max_words=30))
    assert result.outputs["ok"] == {"text": ["true"]}
    assert backend.calls[0]["system"] == "Write a English prompt of 30 words or fewer."
    assert backend.calls[0]["prompt"] == "Image prompt: dog"


def test_rewrite_trims_long_answer():
    answer = "a dog on a lawn, warm light, " + ", ".join(f"detail {number}" for number in range(40))
    text, problem = check_rewrite(answer, "dog", "instruction", "en", 12)
    assert problem is None
    assert len(text.split()) <= 12
    assert text.startswith("a dog on a lawn, warm light")


def test_rewrite_rejects_runaway_text_without_boundaries():
    text, problem = check_rewrite("a dog " + " ".join(f"w{number}" for number in range(49)), "a dog", "instruction", "en", 10)
    assert problem == "runaway length: 51 words, at most 10"


def test_clean_rewrite_strips_labels_and_quotes():
    assert clean_rewrite('Sure! Here is your prompt:\n"a red fox in snow"') == "a red fox in snow"
    assert clean_rewrite("**Prompt:** a red fox in snow") == "a red fox in snow"


def test_rewrite_empty_prompt_error(executor):
    scripted(executor, [REWRITTEN])
    document = rewrite_document()
    document["nodes"]["rewrite"]["inputs"]["prompt"] = "  "
    result = executor.run(document)
    assert result.error["message"] == "input 'prompt' is empty; there is nothing to rewrite"


@pytest.mark.models
@pytest.mark.slow
def test_flow_with_real_smollm2(executor, monkeypatch):
    import os
    from pathlib import Path

    from nodegraph.llm import smollm2_cached

    cache = Path(os.environ.get("NODEGRAPH_TEST_MODEL_CACHE") or Path.home() / ".cache" / "nodegraph")
    if not smollm2_cached(cache):
        pytest.skip("SmolLM2 is not cached; run `nodegraph models pull smollm2` first")
    monkeypatch.setenv("NODEGRAPH_CACHE_DIR", str(cache))
    executor.models.cache_dir = cache
    document = flagship("dog", {"type": "LoadLLM", "inputs": {}})
    document["nodes"]["ok"] = {"type": "ShowText", "inputs": {"text": link("rewrite", "ok")}}
    result = executor.run(document)
    assert result.status == "succeeded", result.error
    rewritten = result.outputs["show"]["text"][0]
    if result.outputs["ok"] == {"text": ["true"]}:
        assert "dog" in rewritten.lower()
    else:
        assert rewritten == "dog"


def test_rewrite_chinese_prompt_with_embedded_llm_warns(executor, events):
    # A stand-in under the embedded model's key: the guard must decide before it is asked anything.
    backend = ScriptedBackend(["A fluent English answer about something else."])
    executor.models.load(LLMSpec("embedded", "smollm2", device="cpu", dtype="auto").key, lambda: backend)
    document = workflow({
        "llm": {"type": "LoadLLM", "inputs": {"source": "smollm2"}},
        "rewrite": {"type": "LLMRewrite", "inputs": {"llm": link("llm", "llm"), "prompt": "一只可爱的小狗在草地上玩耍。"}},
        "show": {"type": "ShowText", "inputs": {"text": link("rewrite", "prompt")}},
        "ok": {"type": "ShowText", "inputs": {"text": link("rewrite", "ok")}},
    })
    result = executor.run(document, on_event=events)

    assert result.status == "succeeded", result.error
    assert result.outputs["show"] == {"text": ["一只可爱的小狗在草地上玩耍。"]}
    assert result.outputs["ok"] == {"text": ["false"]}
    (warning,) = events.of("node.warning")
    assert warning["node"] == "rewrite"
    assert "reads and writes only English, and this prompt is in Chinese" in warning["message"]
    assert backend.calls == []
