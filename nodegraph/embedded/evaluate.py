"""Measure the embedded model on color-shape-background combinations held out of training.

    python -m nodegraph.embedded.evaluate [--weights FILE] [--count 96] [--edits 64] [--grid grid.png]

Renders captions for held-out triples (each with a size and a position), generates one
image per caption, reads each back with the analyzer and prints the share of images whose
background, main object color, shape, size and position match the caption. Then runs the
editing check: image-to-image at --strength from a rendered "red ball" scene toward the
same caption with "blue", counting how often the ball turns blue while the background kind
stays. --json writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from .scene import HELD_OUT, POSITIONS, SIZES, Scene, SceneObject, caption, render

TARGETS = {"background": 0.90, "color": 0.80, "shape": 0.60, "position": 0.70, "edit": 0.70}


def held_out_cases(count: int, seed: int) -> list[tuple[Scene, str]]:
    """count single-object scenes cycling through the held-out triples, with full captions."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        color, shape, background = HELD_OUT[index % len(HELD_OUT)]
        obj = SceneObject(shape, color, rng.choice(tuple(SIZES)), rng.choice(tuple(POSITIONS)))
        scene = Scene(background, (obj,))
        cases.append((scene, caption(scene, rng, full=True)))
    return cases


def edit_cases(count: int, seed: int) -> list[tuple[Scene, str, str]]:
    """(red ball scene, its caption, the same caption with blue) for the editing check."""
    from .scene import BACKGROUNDS

    rng = random.Random(seed + 7919)
    cases = []
    for _ in range(count):
        obj = SceneObject("ball", "red", rng.choice(tuple(SIZES)), rng.choice(tuple(POSITIONS)))
        scene = Scene(rng.choice(tuple(BACKGROUNDS)), (obj,))
        state = rng.getstate()
        red = caption(scene, rng, full=True)
        rng.setstate(state)
        blue = caption(replace(scene, objects=(replace(obj, color="blue"),)), rng, full=True)
        cases.append((scene, red, blue))
    return cases


def _generate(pipe, prompts, seeds, batch, **kwargs):
    import torch

    images = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        embeds, negative = pipe.encode_prompt(chunk, None)
        generators = [torch.Generator().manual_seed(s) for s in seeds[start : start + batch]]
        extra = {k: (v[start : start + batch] if k == "image" else v) for k, v in kwargs.items()}
        out = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, generator=generators, **extra)
        images.append(out.images)
    return torch.cat(images)


def evaluate(pipe, count=96, edits=64, seed=0, steps=20, guidance=3.0, strength=0.6, batch=16, grid=None) -> dict:
    import numpy as np
    import torch

    from .analyze import analyze

    results: dict = {"count": count, "steps": steps, "guidance": guidance}
    cases = held_out_cases(count, seed)
    started = time.perf_counter()
    images = _generate(pipe, [c for _, c in cases], [seed * 100_000 + i for i in range(count)], batch,
                       num_inference_steps=steps, guidance_scale=guidance)
    results["seconds_per_image"] = round((time.perf_counter() - started) / count, 3)
    hits = {"background": 0, "color": 0, "shape": 0, "size": 0, "position": 0, "object_found": 0}
    for (scene, _), image in zip(cases, images):
        found = analyze(image.permute(1, 2, 0).numpy())
        want = scene.objects[0]
        hits["background"] += found.background == scene.background
        main = found.main
        if main is None:
            continue
        hits["object_found"] += 1
        for key in ("color", "shape", "size", "position"):
            hits[key] += getattr(main, key) == getattr(want, key)
    results["held_out"] = {k: round(v / count, 3) for k, v in hits.items()}

    if edits:
        triples = edit_cases(edits, seed)
        sources = torch.from_numpy(np.stack([render(s, pipe.native_resolution) for s, _, _ in triples]))
        sources = sources.permute(0, 3, 1, 2).float() / 255.0
        edited = _generate(pipe, [b for _, _, b in triples], [seed * 100_000 + 50_000 + i for i in range(edits)],
                           batch, image=sources, strength=strength, num_inference_steps=steps, guidance_scale=guidance)
        blue = kept = both = 0
        for (scene, _, _), image in zip(triples, edited):
            found = analyze(image.permute(1, 2, 0).numpy())
            is_blue = found.main is not None and found.main.color == "blue"
            is_kept = found.background == scene.background
            blue += is_blue
            kept += is_kept
            both += is_blue and is_kept
        results["edit"] = {
            "count": edits,
            "strength": strength,
            "turned_blue": round(blue / edits, 3),
            "background_kept": round(kept / edits, 3),
            "both": round(both / edits, 3),
        }
    if grid:
        _save_grid(images[:48], grid)
    return results


def _save_grid(images, path, columns=8, scale=4):
    import numpy as np
    from PIL import Image

    pixels = (images.permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    rows = [np.concatenate(list(pixels[i : i + columns]), axis=1) for i in range(0, len(pixels), columns)]
    if len(rows) > 1 and rows[-1].shape != rows[0].shape:
        rows = rows[:-1]
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST).save(path)


def report(results: dict) -> str:
    lines = [f"held-out combinations: {results['count']} images, {results['steps']} steps, "
             f"guidance {results['guidance']}, {results['seconds_per_image']} s per image"]
    for key, value in results["held_out"].items():
        target = TARGETS.get(key)
        mark = "" if target is None else f"  (target {target:.0%}: {'met' if value >= target else 'not met'})"
        lines.append(f"  {key:<13} {value:6.1%}{mark}")
    if "edit" in results:
        e = results["edit"]
        lines.append(f"editing red ball -> blue ball, strength {e['strength']}, {e['count']} images")
        lines.append(f"  turned blue   {e['turned_blue']:6.1%}")
        lines.append(f"  background    {e['background_kept']:6.1%} kept")
        lines.append(f"  both          {e['both']:6.1%}  (target {TARGETS['edit']:.0%}: "
                     f"{'met' if e['both'] >= TARGETS['edit'] else 'not met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodegraph.embedded.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="model.safetensors (default: the shipped weights)")
    parser.add_argument("--count", type=int, default=96, help="held-out images (at least 64 for a stable figure)")
    parser.add_argument("--edits", type=int, default=64, help="image-to-image editing cases (0 skips the check)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--grid", type=Path, default=None, help="save the first 48 held-out images as a PNG grid")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from ..errors import ModelUnavailable
    from . import load_embedded_pipeline

    torch.set_num_threads(args.threads)
    try:
        pipe = load_embedded_pipeline(weights=args.weights)
    except ModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = evaluate(pipe, args.count, args.edits, args.seed, args.steps, args.guidance, args.strength,
                       grid=args.grid)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
