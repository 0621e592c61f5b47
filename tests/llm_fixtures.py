"""Test helpers for the LLM tests: a tiny GGUF model, a mock OpenAI-compatible server, a scripted backend."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_alphabet() -> list[str]:
    """Return the 256 printable characters byte-level BPE uses for the bytes 0..255."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def write_tiny_gguf(path: Path, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                    ffn: int = 64, seed: int = 0) -> Path:
    """Write a llama GGUF with random weights and a small byte-level BPE tokenizer."""
    import gguf

    rng = np.random.default_rng(seed)
    merges = ["Ġ t", "t h", "Ġt h", "h e", "Ġ a", "e r"]
    tokens = _byte_alphabet() + [merge.replace(" ", "") for merge in merges]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += specials
    vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-llama")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (vocab - len(specials)) + [3] * len(specials))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab - 3)
    writer.add_eos_token_id(vocab - 1)
    writer.add_pad_token_id(vocab - 3)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    head_dim = hidden // heads
    writer.add_tensor("token_embd.weight", weight(vocab, hidden))
    for block in range(layers):
        writer.add_tensor(f"blk.{block}.attn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{block}.attn_q.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{block}.attn_k.weight", weight(kv_heads * head_dim, hidden))
        writer.add_tensor(f"blk.{block}.attn_v.weight", weight(kv_heads * head_dim, hidden))
        writer.add_tensor(f"blk.{block}.attn_output.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{block}.ffn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{block}.ffn_gate.weight", weight(ffn, hidden))
        writer.add_tensor(f"blk.{block}.ffn_up.weight", weight(ffn, hidden))
        writer.add_tensor(f"blk.{block}.ffn_down.weight", weight(hidden, ffn))
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.add_tensor("output.weight", weight(vocab, hidden))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@dataclass
class MockServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers from a script.

    Each entry of `script` handles one request: a dict is sent as JSON with status 200,
    a (status, text) tuple as a raw answer, a float as a delay in seconds before an
    empty answer (to cause timeouts). When the script runs out, the last entry repeats.
    """

    script: list[Any] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def start_mock_server(server: MockServer) -> Callable[[], None]:
    """Start the server in a thread with its own event loop; return a function that stops it."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        server.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        step = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
        if isinstance(step, float):
            await asyncio.sleep(step)
            return web.json_response({})
        if isinstance(step, tuple):
            return web.Response(status=step[0], text=step[1], content_type="application/json")
        return web.json_response(step)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        app.router.add_post("/v1/embeddings", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.port = runner.addresses[0][1]
        state["runner"] = runner

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return stop


def chat_answer(content: str, **message: Any) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message}}]}


class ScriptedBackend:
    """An LLM backend that answers from a list, recording each call."""

    def __init__(self, answers: list[str] | Callable[[str, str, int], str]):
        self.answers = answers
        self.calls: list[dict] = []

    def generate(self, prompt: str, *, system: str, max_tokens: int, temperature: float, top_p: float, seed: int) -> str:
        self.calls.append({"prompt": prompt, "system": system, "seed": seed})
        if callable(self.answers):
            return self.answers(prompt, system, seed)
        return self.answers[min(len(self.calls) - 1, len(self.answers) - 1)]

    def encode(self, text: str) -> list[float]:
        return [float(len(text)), 1.0]
