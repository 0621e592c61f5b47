"""Train the embedded image model: one command, reproducible from a seed, resumable.

    python -m nodegraph.embedded.train --out RUN_DIR [--steps 20000] [--seed 0] [--max-minutes 90]

The run directory gets data-SEED-N.pt (rendered scenes and their cached caption
embeddings, made once), train.log, and checkpoint/ (rewritten every --checkpoint-every
steps, in the same two-file format as nodegraph/embedded/weights: model.safetensors with
the EMA weights in float16 for inference, training-state.safetensors with the raw weights
and the Adam moments). Running the same command again resumes from checkpoint/. Batches
and noise derive from (seed, step), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from .model import MODEL_FILE, SCHEDULER_CONFIG, STATE_FILE

DATA_VERSION = 1


def build_dataset(seed: int, count: int, run_dir: Path, log):
    import numpy as np
    import torch

    from .model import encode_texts, load_text_encoder
    from .scene import sample

    path = run_dir / f"data-v{DATA_VERSION}-{seed}-{count}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    log(f"rendering {count} scenes")
    images, captions = [], []
    for index in range(count):
        _, text, pixels = sample(seed * 1_000_003 + index)
        images.append(pixels)
        captions.append(text)
    encoder, tokenizer = load_text_encoder()
    log("encoding captions")
    started = time.time()
    embeds = encode_texts(encoder, tokenizer, captions).half()
    empty = encode_texts(encoder, tokenizer, [""])[0].half()
    log(f"encoded {count} captions in {time.time() - started:.0f} s")
    data = {
        "images": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        "embeds": embeds,
        "empty": empty,
    }
    torch.save(data, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    return data


def save_checkpoint(folder: Path, unet, ema: dict, optimizer, meta: dict) -> None:
    """Write model.safetensors (EMA, float16) and training-state.safetensors atomically."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    text = {"nodegraph": json.dumps(meta)}
    model = {k: v.detach().to(torch.float16).contiguous() for k, v in ema.items()}
    state: dict[str, torch.Tensor] = {}
    names = {id(p): n for n, p in unet.named_parameters()}
    for name, param in unet.named_parameters():
        state[f"param.{name}"] = param.detach().float().contiguous()
    for group in optimizer.param_groups:
        for param in group["params"]:
            slot = optimizer.state.get(param)
            if not slot:
                continue
            name = names[id(param)]
            state[f"exp_avg.{name}"] = slot["exp_avg"].to(torch.bfloat16).contiguous()
            state[f"exp_avg_sq.{name}"] = slot["exp_avg_sq"].to(torch.bfloat16).contiguous()
    for filename, tensors in ((MODEL_FILE, model), (STATE_FILE, state)):
        tmp = folder / (filename + ".tmp")
        save_file(tensors, str(tmp), metadata=text)
        os.replace(tmp, folder / filename)


def load_checkpoint(folder: Path, unet, ema: dict, optimizer) -> dict:
    import torch
    from safetensors.torch import load_file

    from .model import read_metadata

    meta = read_metadata(folder / STATE_FILE)
    model = load_file(str(folder / MODEL_FILE))
    state = load_file(str(folder / STATE_FILE))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            param.copy_(state[f"param.{name}"])
            ema[name].copy_(model[name].float())
            if f"exp_avg.{name}" in state:
                optimizer.state[param] = {
                    "step": torch.tensor(float(meta["step"])),
                    "exp_avg": state[f"exp_avg.{name}"].float(),
                    "exp_avg_sq": state[f"exp_avg_sq.{name}"].float(),
                }
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodegraph.embedded.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, log, cached data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20000, help="total optimizer steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--scenes", type=int, default=12000, help="rendered training scenes (captions cached)")
    parser.add_argument("--caption-dropout", type=float, default=0.1, help="share of empty captions, for guidance")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--snapshot-every", type=int, default=2000, help="also keep a copy every N steps")
    parser.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this much time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a busy shared CPU one thread is faster than two (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    # Sleeping rather than spinning OpenMP threads keep a crowded CPU from stalling every op.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import numpy as np
    import torch
    from diffusers import DDPMScheduler

    from .model import build_unet, predict_noise

    torch.set_num_threads(args.threads)
    run_dir: Path = args.out
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(run_dir / "train.log", "a", buffering=1)

    def log(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        log_file.write(line + "\n")

    data = build_dataset(args.seed, args.scenes, run_dir, log)
    images, embeds, empty = data["images"], data["embeds"], data["empty"]

    torch.manual_seed(args.seed)
    unet = build_unet()
    unet.train()
    ema = {n: p.detach().clone() for n, p in unet.named_parameters()}
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    alphas = scheduler.alphas_cumprod.float()
    snr = alphas / (1 - alphas)
    weights = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weighting for the noise loss

    checkpoint = run_dir / "checkpoint"
    step, spent = 0, 0.0
    if (checkpoint / STATE_FILE).is_file():
        meta = load_checkpoint(checkpoint, unet, ema, optimizer)
        step, spent = meta["step"], meta["train_seconds"]
        log(f"resumed from step {step} ({spent / 60:.1f} min spent)")
    else:
        log(f"new run: {sum(p.numel() for p in unet.parameters())} parameters, args {vars(args)}")

    def meta_now() -> dict:
        return {
            "step": step,
            "train_seconds": round(spent, 1),
            "seed": args.seed,
            "scenes": args.scenes,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "data_version": DATA_VERSION,
        }

    started = time.time()
    window_loss, window_start = [], time.time()
    count = images.shape[0]
    while step < args.steps:
        if args.max_minutes and time.time() - started > args.max_minutes * 60:
            log("time limit reached")
            break
        t0 = time.time()
        rng = np.random.default_rng([args.seed, step])
        index = torch.from_numpy(rng.integers(0, count, size=args.batch_size))
        gen = torch.Generator().manual_seed(args.seed * 1_000_000_007 + step)
        x0 = images[index].float() / 127.5 - 1.0
        cond = embeds[index].float()
        drop = torch.rand(args.batch_size, generator=gen) < args.caption_dropout
        cond[drop] = empty.float()
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        noisy = scheduler.add_noise(x0, noise, t)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        pred = predict_noise(unet, noisy, t, cond)
        loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (loss * weights[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        step += 1
        decay = min(args.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, param in unet.named_parameters():
                ema[name].mul_(decay).add_(param.detach(), alpha=1 - decay)
        spent += time.time() - t0
        window_loss.append(loss.item())
        if step % 50 == 0:
            elapsed = time.time() - window_start
            log(f"step {step} loss {sum(window_loss) / len(window_loss):.4f} {elapsed / len(window_loss):.2f} s/step "
                f"train {spent / 60:.1f} min")
            window_loss, window_start = [], time.time()
        if step % args.checkpoint_every == 0 or step == args.steps:
            save_checkpoint(checkpoint, unet, ema, optimizer, meta_now())
        if args.snapshot_every and step % args.snapshot_every == 0:
            save_checkpoint(run_dir / f"snapshot-{step:06d}", unet, ema, optimizer, meta_now())
        if not math.isfinite(loss.item()):
            log("loss is not finite; stopping")
            return 1
    save_checkpoint(checkpoint, unet, ema, optimizer, meta_now())
    log(f"stopped at step {step}, {spent / 60:.1f} min of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
