"""Images with one field changed and both CRCs made right again: what only a check of the
fields themselves (the driver's image check, or the gateware's LayerCheck) can refuse."""

from __future__ import annotations

import struct
import zlib

from host.image import HEADER_BYTES, HEADER_CRC_SPAN
from hw.layouts import DESCRIPTOR_BYTES

__all__ = ["patched", "patch_descriptor"]


def patched(image: bytes, offset: int, fmt: str, value) -> bytes:
    """The image with the field at byte `offset` (struct format `fmt`) set to `value` and both
    CRCs fixed."""
    data = bytearray(image)
    struct.pack_into(fmt, data, offset, value)
    struct.pack_into("<I", data, HEADER_CRC_SPAN + 4, zlib.crc32(bytes(data[HEADER_BYTES:])))
    struct.pack_into("<I", data, HEADER_CRC_SPAN, zlib.crc32(bytes(data[:HEADER_CRC_SPAN])))
    return bytes(data)


def patch_descriptor(image: bytes, layer: int, offset: int, fmt: str, value) -> bytes:
    """`patched` at byte `offset` of layer `layer`'s descriptor."""
    return patched(image, HEADER_BYTES + layer * DESCRIPTOR_BYTES + offset, fmt, value)
