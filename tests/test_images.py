"""Tests for nodegraph.images: layout conversions and safe opening of image files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from nodegraph.errors import NodeError
from nodegraph.images import (
    ImageTooLarge,
    ImageUnreadable,
    attach_generation,
    copy_generation,
    from_pipeline_output,
    generation_of,
    load_image,
    open_image,
    pil_to_tensor,
    resize_images,
    resize_masks,
    tensor_to_pil,
    to_pipeline_image,
    to_pipeline_mask,
)


def _gradient(width: int = 24, height: int = 16) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 77
    return Image.fromarray(pixels, mode="RGB")


def _png_header_only(path, width: int, height: int) -> None:
    """Write a valid 1-bit PNG of width x height whose rows are all zero, streaming the compression."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes((width + 7) // 8)  # filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_pil_round_trip_is_exact():
    image = _gradient()
    tensor = pil_to_tensor(image)
    assert tensor.shape == (1, 16, 24, 3)
    assert tensor.dtype == torch.float32
    assert tensor.min() >= 0.0
    assert tensor.max() <= 1.0
    back = tensor_to_pil(tensor)[0]
    assert np.array_equal(np.asarray(back), np.asarray(image))


def test_pil_batch_needs_one_size():
    with pytest.raises(ValueError, match="one size"):
        pil_to_tensor([_gradient(24, 16), _gradient(16, 16)])


def test_pipeline_output_layouts_agree():
    expected = pil_to_tensor(_gradient())
    channels_first = expected.permute(0, 3, 1, 2).clone()
    assert torch.equal(from_pipeline_output(channels_first), expected)
    assert torch.equal(from_pipeline_output(expected.numpy()), expected)
    assert torch.allclose(from_pipeline_output([_gradient()]), expected)


def test_pipeline_output_is_clamped():
    images = torch.tensor([-0.5, 0.5, 1.5]).reshape(1, 3, 1, 1)
    converted = from_pipeline_output(images)
    assert converted.shape == (1, 1, 1, 3)
    assert converted.flatten().tolist() == [0.0, 0.5, 1.0]


def test_to_pipeline_layouts():
    images = pil_to_tensor(_gradient())
    assert to_pipeline_image(images).shape == (1, 3, 16, 24)
    masks = torch.zeros(1, 16, 24)
    assert to_pipeline_mask(masks).shape == (1, 1, 16, 24)


def test_check_rejects_wrong_layout():
    with pytest.raises(NodeError, match=r"shaped \[batch, height, width, 3\], got \[1, 3, 16, 24\]"):
        to_pipeline_image(torch.zeros(1, 3, 16, 24))


def test_resize_keeps_range_and_size():
    images = pil_to_tensor(_gradient())
    resized = resize_images(images, 48, 32)
    assert resized.shape == (1, 32, 48, 3)
    assert resized.min() >= 0.0
    assert resized.max() <= 1.0
    assert resize_masks(torch.ones(2, 16, 24), 12, 8).shape == (2, 8, 12)


def test_load_image_alpha_becomes_mask(tmp_path):
    rgba = _gradient().convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, 8, 4))  # transparent corner: the area to change
    rgba.putalpha(alpha)
    path = tmp_path / "erased.png"
    rgba.save(path)
    loaded = load_image(path)
    assert loaded.has_alpha
    assert loaded.image.shape == (1, 16, 24, 3)
    assert loaded.mask.shape == (1, 16, 24)
    assert loaded.mask[0, 0, 0].item() == 1.0
    assert loaded.mask[0, 10, 20].item() == 0.0
    assert loaded.mask.sum().item() == 8 * 4


def test_load_image_without_alpha_has_empty_mask(tmp_path):
    path = tmp_path / "plain.jpg"
    _gradient().save(path, quality=95)
    loaded = load_image(path)
    assert not loaded.has_alpha
    assert loaded.mask.sum().item() == 0.0


def test_pixel_limit_rejects_huge_file(tmp_path):
    path = tmp_path / "huge.png"
    _png_header_only(path, 20000, 20000)
    with pytest.raises(ImageTooLarge) as raised:
        open_image(path)
    message = str(raised.value)
    assert message.startswith(f"{path} has more pixels than the limit of 67,108,864 (Pillow: Image size (400000000 pixels)")
    assert message.endswith("resize it before loading")


def test_pixel_limit_rejects_file_below_pillow_limit(tmp_path):
    path = tmp_path / "large.png"
    _png_header_only(path, 9000, 9000)
    with pytest.raises(ImageTooLarge, match=r"is 9000x9000 pixels \(81,000,000\), more than the limit of 67,108,864"):
        open_image(path)


def test_pixel_limit_is_a_parameter(tmp_path):
    path = tmp_path / "small.png"
    _gradient().save(path)
    with pytest.raises(ImageTooLarge, match=r"is 24x16 pixels \(384\), more than the limit of 100"):
        open_image(path, max_pixels=100)


def test_truncated_png_is_rejected(tmp_path):
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageUnreadable, match="damaged or truncated"):
        open_image(path)


def test_not_an_image_is_rejected(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(ImageUnreadable, match="is not an image file"):
        open_image(path)


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(ImageUnreadable, match="was not found"):
        open_image(tmp_path / "absent.png")


def test_generation_record_follows_copies():
    images = attach_generation(torch.zeros(1, 8, 8, 3), {"seed": 5})
    assert generation_of(images) == {"seed": 5}
    resized = copy_generation(images, resize_images(images, 16, 16))
    assert generation_of(resized) == {"seed": 5}
    assert generation_of(torch.zeros(1)) is None
