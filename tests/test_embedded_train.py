"""The training command: it checkpoints in the shipped format and resumes where it stopped."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.models, pytest.mark.slow]

SMALL = ["--scenes", "24", "--batch-size", "4", "--warmup", "2", "--checkpoint-every", "2", "--snapshot-every", "0"]


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    from nodegraph.embedded.model import MODEL_FILE, STATE_FILE, load_unet_weights, read_metadata
    from nodegraph.embedded.train import main

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["--out", str(straight), "--steps", "4", *SMALL]) == 0
    assert main(["--out", str(resumed), "--steps", "2", *SMALL]) == 0
    assert read_metadata(resumed / "checkpoint" / STATE_FILE)["step"] == 2
    assert main(["--out", str(resumed), "--steps", "4", *SMALL]) == 0
    assert "resumed from step 2" in (resumed / "train.log").read_text()

    assert read_metadata(resumed / "checkpoint" / MODEL_FILE)["step"] == 4
    a = load_file(str(straight / "checkpoint" / STATE_FILE))
    b = load_file(str(resumed / "checkpoint" / STATE_FILE))
    assert a.keys() == b.keys()
    # The Adam moments are saved in bfloat16, so a resumed run is close to, not equal to, a straight one.
    for key in (k for k in a if k.startswith("param.")):
        assert torch.allclose(a[key], b[key], atol=2e-3), key
    # The checkpoint's model file is what the pipeline loads.
    load_unet_weights(resumed / "checkpoint" / MODEL_FILE)
