"""Tests for the image nodes: LoadImage, SaveImage, ImageCompare, ResizeImage and MaskFromRect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import link, workflow


@pytest.fixture
def input_dir(executor):
    executor.input_dir.mkdir(parents=True, exist_ok=True)
    return executor.input_dir


def save_picture(folder, name, width, height, color=(200, 30, 30)):
    Image.new("RGB", (width, height), color).save(folder / name)
    return name


def run_ok(executor, nodes, **kwargs):
    result = executor.run(workflow(nodes), **kwargs)
    assert result.status == "succeeded", result.error or result.problems
    return result


def test_compare_side_by_side(executor, input_dir):
    save_picture(input_dir, "a.png", 32, 16)
    save_picture(input_dir, "b.png", 16, 8, color=(0, 0, 255))
    result = run_ok(executor, {
        "a": {"type": "LoadImage", "inputs": {"image": "a.png"}},
        "b": {"type": "LoadImage", "inputs": {"image": "b.png"}},
        "compare": {"type": "ImageCompare", "inputs": {"first": link("a", "image"), "second": link("b", "image")}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("compare", "image")}},
    })
    combined = result.values["compare"]["image"]
    # b is scaled to 16 pixels high (32 wide); a 2-pixel white gap sits between them
    assert combined.shape == (1, 16, 32 + 2 + 32, 3)
    assert torch.allclose(combined[0, 8, 40], torch.tensor([0.0, 0.0, 1.0]), atol=0.02)
    assert torch.equal(combined[0, 8, 33], torch.ones(3))


def test_compare_labels_add_strip(executor, input_dir):
    save_picture(input_dir, "a.png", 32, 32)
    result = run_ok(executor, {
        "a": {"type": "LoadImage", "inputs": {"image": "a.png"}},
        "compare": {"type": "ImageCompare", "inputs": {"first": link("a", "image"), "second": link("a", "image"),
                                                      "first_label": "before", "second_label": "after"}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("compare", "image")}},
    })
    combined = result.values["compare"]["image"]
    assert combined.shape == (1, 16 + 32, 66, 3)
    assert combined[0, :16].min() < 0.5  # the label text is dark on the white strip


def test_resize_keep_aspect(executor, input_dir):
    save_picture(input_dir, "wide.png", 200, 100)
    result = run_ok(executor, {
        "load": {"type": "LoadImage", "inputs": {"image": "wide.png"}},
        "resize": {"type": "ResizeImage", "inputs": {"image": link("load", "image"), "width": 100, "height": 100,
                                                    "keep_aspect": True}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("resize", "image")}},
    })
    assert result.values["resize"]["image"].shape == (1, 48, 96, 3)


def test_mask_from_rect(executor):
    result = run_ok(executor, {
        "mask": {"type": "MaskFromRect", "inputs": {"x": 2, "y": 1, "rect_width": 3, "rect_height": 2,
                                                   "width": 8, "height": 4}},
        "show": {"type": "ShowText", "inputs": {"text": link("mask", "mask")}},
    })
    mask = result.values["mask"]["mask"]
    expected = torch.zeros(1, 4, 8)
    expected[:, 1:3, 2:5] = 1.0
    assert torch.equal(mask, expected)


def test_mask_feather_and_invert(executor):
    result = run_ok(executor, {
        "mask": {"type": "MaskFromRect", "inputs": {"x": 0, "y": 0, "rect_width": 8, "rect_height": 8,
                                                   "width": 8, "height": 8, "feather": 4, "invert": True}},
        "show": {"type": "ShowText", "inputs": {"text": link("mask", "mask")}},
    })
    mask = result.values["mask"]["mask"][0]
    assert mask[0, 0].item() == pytest.approx(0.75)  # edge pixel: 1/4 of the way in, inverted
    assert mask[3, 3].item() == 0.0
    assert mask.min() >= 0.0
    assert mask.max() <= 1.0


def test_mask_outside_image(executor):
    result = executor.run(workflow({
        "mask": {"type": "MaskFromRect", "inputs": {"x": 10, "y": 0, "width": 8, "height": 8}},
        "show": {"type": "ShowText", "inputs": {"text": link("mask", "mask")}},
    }))
    assert result.status == "failed"
    assert result.error["message"] == ("the rectangle starts at (10, 0), outside the 8x8 mask; "
                                       "move it inside, x below the width and y below the height")


def test_load_image_outside_input_folder(executor, input_dir, tmp_path):
    save_picture(tmp_path, "secret.png", 8, 8)
    result = executor.run(workflow({
        "load": {"type": "LoadImage", "inputs": {"image": "../secret.png"}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("load", "image")}},
    }))
    assert result.status == "failed"
    assert result.error["message"].startswith("input 'image' is '../secret.png', which is outside the input folder")


def test_load_image_rereads_changed_file(executor, input_dir):
    nodes = {"load": {"type": "LoadImage", "inputs": {"image": "pic.png"}},
             "show": {"type": "PreviewImage", "inputs": {"image": link("load", "image")}}}
    save_picture(input_dir, "pic.png", 8, 8, color=(255, 0, 0))
    first = run_ok(executor, nodes).values["load"]["image"]
    save_picture(input_dir, "pic.png", 8, 8, color=(0, 255, 0))
    second = run_ok(executor, nodes)
    assert second.nodes["load"].status == "executed"
    assert not torch.equal(first, second.values["load"]["image"])


def test_save_image_names_and_prefix(executor, input_dir):
    save_picture(input_dir, "pic.png", 8, 8)
    nodes = {"load": {"type": "LoadImage", "inputs": {"image": "pic.png"}},
             "save": {"type": "SaveImage", "inputs": {"image": link("load", "image"), "filename_prefix": "../escape/x y"}}}
    first = run_ok(executor, nodes).outputs["save"]["images"][0]
    second = run_ok(executor, nodes).outputs["save"]["images"][0]
    assert first["filename"] == "escape/x_y_00001.png"
    assert second["filename"] == "escape/x_y_00002.png"
    saved = np.asarray(Image.open(first["path"]))
    assert saved.shape == (8, 8, 3)
