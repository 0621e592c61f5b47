"""LLM nodes: load a model, generate, encode text, judge a prompt, rewrite a weak prompt.

Every node that takes an `llm` takes it lazily: the model behind it is loaded only
when the node really runs, so an LLM wired only into a branch that is not taken is
never loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from nodegraph.errors import NodeError
from nodegraph.node import SKIPPED, Input, Node, Output
from nodegraph.types import BOOLEAN, EMBEDDING, FLOAT, INT, LLM, STRING

SEED_MAX = 2**64 - 1
LANGUAGES = ("en", "zh", "ja", "ko", "fr", "de", "es", "ru")
REWRITE_ATTEMPTS = 3

# The default request is one user message with no system message: the embedded 135M model follows
# "Describe a picture of …" far more often than a system instruction (checked by hand on a few prompts).
DEFAULT_REQUEST = (
    "Describe a picture of {prompt} in one sentence in {language}, for an image generator. "
    "Say where it is, the light, the colors and the style. Answer with the description only, "
    "at most {max_words} words."
)
CRITIQUE_QUESTION = (
    "Could a painter start from this image prompt without asking questions? It needs a subject, a setting, "
    "and details such as light, color, composition or medium. Answer yes or no, then say in one short "
    "sentence what is missing.\n\nPrompt: {prompt}"
)


def _llm_sources(models: Any) -> list[str]:
    from nodegraph.llm import EMBEDDED, OPENAI_COMPATIBLE

    found = models.scan("llm") if models is not None else []
    return [EMBEDDED, OPENAI_COMPATIBLE, *found]


class LoadLLM(Node):
    type_id = "LoadLLM"
    display_name = "Load LLM"
    category = "llm"
    description = (
        "Choose a language model: the embedded SmolLM2-135M (English only, runs on a CPU), a transformers "
        "folder, a .gguf file, a Hugging Face id, or an OpenAI-compatible server (Ollama, llama.cpp, vLLM)."
    )
    translations = {"zh-CN": {"display_name": "加载 LLM",
                              "description": "选择语言模型：内置的 SmolLM2-135M（仅英文）、本地模型、Hugging Face 模型或 OpenAI 兼容服务。"}}
    inputs = (
        Input("source", STRING, default="smollm2", choices=_llm_sources, open_choices=True,
              description="smollm2, openai-compatible, a model in the models folder, a path, or a Hugging Face id."),
        Input("base_url", STRING, required=False, default="http://127.0.0.1:11434/v1",
              description="For openai-compatible: the server's base URL, up to /v1."),
        Input("model", STRING, required=False, default="",
              description="For openai-compatible: the model name the server knows, e.g. qwen2.5:7b."),
        Input("api_key_env", STRING, required=False, default="",
              description="For openai-compatible: the NAME of the environment variable holding the API key (never the key)."),
        Input("device", STRING, required=False, default="cpu", choices=("cpu", "cuda", "mps"), open_choices=True,
              description="For local models: where the model runs."),
        Input("dtype", STRING, required=False, default="auto", choices=("auto", "float32", "bfloat16", "float16"),
              description="For local models: the precision; auto is float32."),
        Input("timeout", FLOAT, required=False, default=60.0, min=1.0, max=3600.0,
              description="For openai-compatible: seconds one request may take."),
        Input("retries", INT, required=False, default=2, min=0, max=10,
              description="For openai-compatible: further attempts after an error, with growing waits."),
        Input("unload_after_use", BOOLEAN, required=False, default=False,
              description="Unload the model once every node using it in this run has finished (frees RAM before diffusion)."),
    )
    outputs = (Output("llm", LLM, "The model, loaded on first use and shared."),)

    def run(self, ctx, source: str, base_url: str = "", model: str = "", api_key_env: str = "", device: str = "cpu",
            dtype: str = "auto", timeout: float = 60.0, retries: int = 2, unload_after_use: bool = False) -> dict[str, Any]:
        from nodegraph.llm import LLMHandle, smollm2_cached

        spec = self.spec(ctx, source.strip(), base_url.strip(), model.strip(), api_key_env.strip(), device, dtype,
                         timeout, retries)
        handle = LLMHandle(spec, cache_dir=ctx.models.cache_dir)
        if spec.backend == "embedded" and not smollm2_cached(ctx.models.cache_dir):
            handle.on_progress = ctx.warn  # first use: fetching and converting take a while, say so
        if spec.backend != "openai":
            ctx.progress(0, 1)
            handle.backend(ctx.models)
            ctx.progress(1, 1)
        handle.on_progress = None
        if unload_after_use:
            ctx.release_after_consumers(lambda: ctx.models.unload(spec.key))
        return {"llm": handle}

    @staticmethod
    def spec(ctx, source: str, base_url: str, model: str, api_key_env: str, device: str, dtype: str,
             timeout: float, retries: int):
        from nodegraph.llm import EMBEDDED, OPENAI_COMPATIBLE, LLMSpec

        if api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
            raise NodeError("input 'api_key_env' must be the name of an environment variable (letters, digits, _), "
                            "not the key itself; put the key in that variable")
        if source == EMBEDDED:
            return LLMSpec("embedded", EMBEDDED, device=device, dtype=dtype)
        if source == OPENAI_COMPATIBLE or source.startswith(("http://", "https://")):
            url = source if source.startswith(("http://", "https://")) else base_url
            if not url.startswith(("http://", "https://")):
                raise NodeError(f"input 'base_url' is {url!r}; give the server's URL, e.g. http://127.0.0.1:11434/v1")
            if not model:
                raise NodeError("input 'model' is empty; an OpenAI-compatible server needs the model name, e.g. qwen2.5:7b")
            return LLMSpec("openai", url.rstrip("/"), model=model, api_key_env=api_key_env, timeout=float(timeout),
                           retries=int(retries))
        if not source:
            raise NodeError("input 'source' is empty; use smollm2, openai-compatible, a model path or a Hugging Face id")
        local = ctx.models.resolve("llm", source)
        path = str(local) if local is not None else str(Path(source).expanduser())
        return LLMSpec("transformers", path if Path(path).exists() else source, device=device, dtype=dtype)


class LLMGenerate(Node):
    type_id = "LLMGenerate"
    display_name = "LLM generate"
    category = "llm"
    description = ("Answer a prompt with an LLM. A <think>…</think> block goes to `reasoning`, never into `text`. "
                   "The same inputs and seed give the same text.")
    translations = {"zh-CN": {"display_name": "LLM 生成", "description": "用 LLM 回答提示；<think> 块进入 reasoning。"}}
    inputs = (
        Input("llm", LLM, lazy=True, description="The model."),
        Input("prompt", STRING, multiline=True, description="What to ask."),
        Input("system", STRING, required=False, default="", multiline=True, description="A system message."),
        Input("max_tokens", INT, required=False, default=256, min=1, max=8192, description="The maximum length of the answer, in tokens."),
        Input("temperature", FLOAT, required=False, default=0.7, min=0.0, max=2.0, step=0.05,
              description="Randomness; 0 always picks the likeliest token."),
        Input("top_p", FLOAT, required=False, default=0.95, min=0.01, max=1.0, step=0.01,
              description="Sample from the smallest set of tokens whose probabilities add up to this."),
        Input("seed", INT, required=False, default=0, min=0, max=SEED_MAX, widget="seed", description="The sampling seed."),
    )
    outputs = (Output("text", STRING, "The answer without reasoning."), Output("reasoning", STRING, "The <think> contents, or empty."))

    def run(self, ctx, llm, prompt: str, system: str = "", max_tokens: int = 256, temperature: float = 0.7,
            top_p: float = 0.95, seed: int = 0) -> dict[str, Any]:
        if not prompt.strip():
            raise NodeError("input 'prompt' is empty; give the LLM something to answer")
        generation = llm.generate(ctx.models, prompt, system=system, max_tokens=max_tokens, temperature=temperature,
                                  top_p=top_p, seed=seed)
        return {"text": generation.text, "reasoning": generation.reasoning}


class LLMEncode(Node):
    type_id = "LLMEncode"
    display_name = "Encode text"
    category = "llm"
    description = ("Turn text into an embedding: with all-MiniLM-L6-v2 (minilm, the default, offline), "
                   "or with an LLM's hidden states (llm; connect one).")
    translations = {"zh-CN": {"display_name": "文本编码", "description": "把文本编码成向量：默认 all-MiniLM-L6-v2，或用 LLM 的隐藏状态。"}}
    inputs = (
        Input("text", STRING, multiline=True, description="The text to encode."),
        Input("encoder", STRING, default="minilm", choices=("minilm", "llm"),
              description="minilm: the embedded sentence encoder; llm: the connected LLM."),
        Input("llm", LLM, required=False, lazy=True, description="Used only when encoder is llm."),
    )
    outputs = (Output("embedding", EMBEDDING, "The vector and the text it came from."),)

    def needed_inputs(self, ctx, values: dict[str, Any]) -> Iterable[str]:
        return ["llm"] if values.get("encoder") == "llm" and "llm" not in values else []

    def run(self, ctx, text: str, encoder: str = "minilm", llm=SKIPPED) -> dict[str, Any]:
        from nodegraph.embedding import Embedding, encode_minilm

        if encoder == "llm":
            if llm is SKIPPED or llm is None:
                raise NodeError("input 'encoder' is 'llm' but input 'llm' is not connected; connect a LoadLLM or use minilm")
            return {"embedding": Embedding(llm.encode(ctx.models, text), text, f"llm:{llm.spec.source}")}
        return {"embedding": encode_minilm(ctx.models, text)}


class PromptQuality(Node):
    type_id = "PromptQuality"
    display_name = "Prompt quality"
    category = "llm"
    description = (
        "Score how ready a prompt is to draw (0..1) and say why, one reason per line: a concrete subject, a setting, "
        "and at least two visual attributes (light, color, composition, medium). Works without an LLM; a connected "
        "LLM adds its critique to the reasons but does not change the score."
    )
    translations = {"zh-CN": {"display_name": "提示词质量",
                              "description": "给提示词打分（0..1）并逐行说明原因：主体、场景、至少两个视觉属性。无需 LLM。"}}
    inputs = (
        Input("prompt", STRING, multiline=True, description="The prompt to judge."),
        Input("embedding", EMBEDDING, required=False, description="The prompt's MiniLM embedding, for one more feature."),
        Input("llm", LLM, required=False, lazy=True, description="An LLM whose critique is added to the reasons."),
        Input("target_language", STRING, required=False, default="en", choices=LANGUAGES, open_choices=True,
              description="The language the image model reads; a prompt in another language scores below 0.6."),
    )
    outputs = (Output("score", FLOAT, "0..1; QualityBranch's default threshold is 0.6."),
               Output("reasons", STRING, "One reason per line."))

    def run(self, ctx, prompt: str, embedding=None, llm=SKIPPED, target_language: str = "en") -> dict[str, Any]:
        from nodegraph.quality import score_prompt

        vector = None
        if embedding is not None:
            if embedding.text.strip() != prompt.strip():
                ctx.warn("input 'embedding' was made from other text than input 'prompt'; scoring without it")
            else:
                vector = embedding.vector
        result = score_prompt(prompt, embedding=vector, target_language=target_language)
        reasons = list(result.reasons)
        if llm is not SKIPPED and llm is not None and prompt.strip():
            reasons.append("LLM critique: " + self.critique(ctx, llm, prompt))
        return {"score": result.score, "reasons": "\n".join(reasons)}

    @staticmethod
    def critique(ctx, llm, prompt: str) -> str:
        generation = llm.generate(ctx.models, CRITIQUE_QUESTION.format(prompt=prompt), max_tokens=48, temperature=0.0,
                                  top_p=1.0, seed=0)
        text = " ".join(generation.text.split())
        return text[:300] if text else "(no answer)"


class LLMRewrite(Node):
    type_id = "LLMRewrite"
    display_name = "LLM rewrite prompt"
    category = "llm"
    description = (
        "Rewrite a weak prompt into a detailed one with an LLM. Answers that are empty, echo the instruction, refuse, "
        "are in the wrong language or run too long are retried with the next seed; after "
        f"{REWRITE_ATTEMPTS} failed attempts the input prompt passes through with ok false and a warning."
    )
    translations = {"zh-CN": {"display_name": "LLM 改写提示词",
                              "description": "用 LLM 把简短的提示词改写得更具体；输出不合格时换种子重试，最终失败则原样输出并警告。"}}
    inputs = (
        Input("llm", LLM, lazy=True, description="The model."),
        Input("prompt", STRING, multiline=True, description="The prompt to rewrite."),
        Input("instruction", STRING, required=False, default="", multiline=True,
              description="A system message that replaces the built-in request; {language} and {max_words} are filled in."),
        Input("target_language", STRING, required=False, default="en", choices=LANGUAGES, open_choices=True,
              description="The language of the rewritten prompt."),
        Input("max_words", INT, required=False, default=60, min=5, max=400, description="The maximum length of the rewritten prompt, in words."),
        Input("seed", INT, required=False, default=0, min=0, max=SEED_MAX, widget="seed", description="The sampling seed."),
    )
    outputs = (Output("prompt", STRING, "The rewritten prompt, or the input when every attempt failed."),
               Output("ok", BOOLEAN, "Whether a rewrite passed the guards."))

    def run(self, ctx, llm, prompt: str, instruction: str = "", target_language: str = "en", max_words: int = 60,
            seed: int = 0) -> dict[str, Any]:
        from nodegraph.quality import LANGUAGE_NAMES, detect_language

        if not prompt.strip():
            raise NodeError("input 'prompt' is empty; there is nothing to rewrite")
        language = LANGUAGE_NAMES.get(target_language, target_language)
        prompt_language = detect_language(prompt)
        if getattr(llm, "english_only", False) and (prompt_language != "en" or target_language != "en"):
            # A small English-only model replies to such a request with fluent, unrelated English.
            found = LANGUAGE_NAMES.get(prompt_language, prompt_language)
            ctx.warn(f"the embedded LLM reads and writes only English, and this prompt is in {found} "
                     f"(target language {language}); connect a multilingual LLM, e.g. Qwen through Ollama, "
                     "to rewrite or translate it; passing the input prompt on unchanged")
            return {"prompt": prompt, "ok": False}
        request, system, echo_source = self.messages(prompt.strip(), instruction, language, max_words)
        failures: list[str] = []
        for attempt in range(REWRITE_ATTEMPTS):
            ctx.progress(attempt, REWRITE_ATTEMPTS)
            attempt_seed = (seed + attempt) % (SEED_MAX + 1)
            generation = llm.generate(ctx.models, request, system=system, max_tokens=max(32, max_words * 3),
                                      temperature=0.7, top_p=0.9, seed=attempt_seed)
            candidate, problem = check_rewrite(generation.text, prompt, echo_source, target_language, max_words)
            if problem is None:
                ctx.progress(REWRITE_ATTEMPTS, REWRITE_ATTEMPTS)
                return {"prompt": candidate, "ok": True}
            ctx.log.info("rewrite attempt %d (seed %d) rejected: %s", attempt + 1, attempt_seed, problem)
            failures.append(f"seed {attempt_seed}: {problem}")
        ctx.warn(f"every rewrite failed its checks ({'; '.join(failures)}); passing the input prompt on unchanged")
        return {"prompt": prompt, "ok": False}


    @staticmethod
    def messages(prompt: str, instruction: str, language: str, max_words: int) -> tuple[str, str, str]:
        """Return the user message, the system message and the text an echo is checked against."""
        if not instruction.strip():
            fields = {"language": language, "max_words": str(max_words)}
            request = DEFAULT_REQUEST.format(prompt=prompt, **fields)
            return request, "", DEFAULT_REQUEST.format(prompt="", **fields)
        system = instruction.replace("{language}", language).replace("{max_words}", str(max_words))
        return f"Image prompt: {prompt}", system, system


REFUSALS = re.compile(r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t|i am unable|i'm unable|as an ai|"
                      r"i won'?t|i do not feel comfortable|not able to help)\b", re.IGNORECASE)
LEADING_LABEL = re.compile(r"^\s*(?:here(?:'s| is)[^:\n]*:|(?:new|rewritten|improved|detailed|image)?\s*prompt\s*:|"
                           r"sure[,!.]?[^:\n]*:)\s*", re.IGNORECASE)


def clean_rewrite(text: str) -> str:
    """Strip the wrapping small models add: a 'Here is the prompt:' label, quotes, markdown."""
    text = text.strip()
    previous = None
    while previous != text:
        previous = text
        text = LEADING_LABEL.sub("", text).strip()
        text = text.strip("\"'`*“”‘’ \n").strip()
    return " ".join(text.split())


def check_rewrite(raw: str, prompt: str, instruction: str, target_language: str, max_words: int) -> tuple[str, str | None]:
    """Return the cleaned rewrite and the guard it fails, or None when it passes.

    Guards: empty, refusal, echo of the instruction, the prompt unchanged, wrong language,
    the subject dropped, a phrase repeated over and over, runaway length (cut at the last
    clause boundary within max_words when one is near it).
    """
    from nodegraph.quality import analyze, detect_language

    text = clean_rewrite(raw)
    if not text:
        return text, "empty answer"
    if REFUSALS.search(text):
        return text, f"refusal: {text[:80]!r}"
    if _echoes(text, instruction):
        return text, "echoes the instruction"
    if text.lower().strip(" .") == prompt.lower().strip(" ."):
        return text, "returned the prompt unchanged"
    language = detect_language(text)
    if language != target_language:
        return text, f"written in {language}, expected {target_language}"
    repeated = _repeated_phrase(text)
    if repeated:
        return text, f"repeats {repeated!r} over and over"
    if detect_language(prompt) == target_language == "en":
        subject = {word[:4] for word in analyze(prompt).content_words}
        kept = {word[:4] for word in analyze(text).content_words}
        if subject and not subject & kept:
            return text, f"drops the subject ({', '.join(sorted(analyze(prompt).content_words)[:3])})"
    words = text.split()
    if len(words) > max_words:
        cut = " ".join(words[:max_words])
        boundary = max(cut.rfind(","), cut.rfind("."), cut.rfind(";"))
        if boundary < len(cut) // 2:
            return text, f"runaway length: {len(words)} words, at most {max_words}"
        text = cut[:boundary].rstrip(" ,;")
    return text, None


def _repeated_phrase(text: str) -> str | None:
    """Return a three-word phrase that occurs three or more times, the mark of a model stuck in a loop."""
    words = re.findall(r"\w+", text.lower())
    counts: dict[str, int] = {}
    for start in range(len(words) - 2):
        phrase = " ".join(words[start:start + 3])
        counts[phrase] = counts.get(phrase, 0) + 1
        if counts[phrase] >= 3:
            return phrase
    return None


def _echoes(text: str, instruction: str) -> bool:
    """Return whether the text repeats a run of eight or more words of the instruction."""
    instruction_words = re.findall(r"\w+", instruction.lower())
    answer = " ".join(re.findall(r"\w+", text.lower()))
    for start in range(max(len(instruction_words) - 7, 0)):
        if " ".join(instruction_words[start:start + 8]) in answer:
            return True
    return False


NODE_TYPES = (LoadLLM, LLMGenerate, LLMEncode, PromptQuality, LLMRewrite)
