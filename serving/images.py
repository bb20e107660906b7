"""Digit images in and out, with the standard library and NumPy alone (no Pillow).

`decode(data)` reads a PNG (8- or 16-bit grey, grey+alpha, RGB, RGBA, or a palette; not
interlaced) or a binary/ASCII PGM and returns grey levels in [0, 1] as float32 (H, W). Colour
becomes luma (ITU-R BT.601) and transparency is composited over black, the MNIST background.
`size(data)` reads only the header, so an image of the wrong size is refused before it is
decompressed. `png(gray)` writes a grey PNG (the tests and the load test send the shipped
digits this way). Anything else raises `ImageError` with one line saying what was wrong.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


class ImageError(ValueError):
    """The bytes are not an image this server reads; the message says what to send."""


def kind(data: bytes) -> str:
    """'png' or 'pgm' by the file's magic bytes; else ImageError."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data[:2] in (b"P5", b"P2"):
        return "pgm"
    raise ImageError("the upload is not a PNG or PGM image: send a 28x28 PNG, e.g. a digit drawn on the page")


def size(data: bytes) -> tuple[int, int]:
    """(height, width) from the header alone."""
    if kind(data) == "png":
        return _png_header(data)[:2]
    return _pgm_header(data)[:2]


def decode(data: bytes) -> np.ndarray:
    """Grey levels in [0, 1], float32, shaped (height, width)."""
    return _decode_png(data) if kind(data) == "png" else _decode_pgm(data)


# --- PNG ---------------------------------------------------------------------------------------
#
# A PNG is the 8-byte signature, then chunks: length (4 bytes, big-endian), type (4 ASCII),
# data, CRC-32 of type + data. IHDR comes first (width, height, bit depth, colour type,
# compression, filter, interlace); the IDAT chunks together are one zlib stream of the rows,
# each row prefixed by its filter byte (0 none, 1 sub, 2 up, 3 average, 4 Paeth).


def _chunks(data: bytes):
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, name = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if len(body) != length or at + 12 + length > len(data):
            raise ImageError("the PNG is truncated: send the whole file")
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(name + body) != crc:
            raise ImageError(f"the PNG's {name.decode('latin-1')} chunk is corrupt (bad CRC): send the file again")
        yield name, body
        at += 12 + length
        if name == b"IEND":
            return
    raise ImageError("the PNG is truncated (no IEND chunk): send the whole file")


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("the PNG has no IHDR header: send a valid PNG file")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour not in _CHANNELS or depth not in (1, 2, 4, 8, 16) or (colour in (2, 4, 6) and depth < 8):
        raise ImageError(f"the PNG's colour type {colour} at {depth} bits is not valid")
    if interlace:
        raise ImageError("interlaced PNGs are not read here: save the image without interlacing")
    if width == 0 or height == 0:
        raise ImageError("the PNG is empty (0 pixels)")
    return height, width, depth, colour


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    if len(raw) != height * (stride + 1):
        raise ImageError("the PNG's pixel data does not match its size: send a valid PNG file")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.int32)
    for y in range(height):
        kind_, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind_ == 0:
            row = line
        elif kind_ == 2:
            row = (line + previous) & 0xFF
        elif kind_ in (1, 3, 4):  # these depend on the pixel to the left: byte by byte
            row = np.zeros(stride, np.int32)
            for x in range(stride):
                left = row[x - bpp] if x >= bpp else 0
                up = previous[x]
                if kind_ == 1:
                    guess = left
                elif kind_ == 3:
                    guess = (left + up) // 2
                else:
                    corner = previous[x - bpp] if x >= bpp else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (line[x] + guess) & 0xFF
        else:
            raise ImageError(f"the PNG uses an unknown row filter {kind_}: send a valid PNG file")
        out[y] = row
        previous = row
    return out


def _decode_png(data: bytes) -> np.ndarray:
    height, width, depth, colour = _png_header(data)
    idat, palette, transparency = [], None, None
    for name, body in _chunks(data):
        if name == b"IDAT":
            idat.append(body)
        elif name == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif name == b"tRNS":
            transparency = np.frombuffer(body, np.uint8)
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        raise ImageError("the PNG's pixel data is corrupt: send the file again") from None
    channels = _CHANNELS[colour]
    stride = (width * channels * depth + 7) // 8
    rows = _unfilter(raw, height, stride, max(1, channels * depth // 8))
    if depth == 16:
        samples = rows.view(">u2").reshape(height, width, channels).astype(np.float32) / 65535
    elif depth == 8:
        samples = rows.reshape(height, width, channels).astype(np.float32) / 255
    else:  # 1, 2 or 4 bits: unpack, then keep the first `width` samples of each row
        bits = np.unpackbits(rows, axis=1).reshape(height, -1, depth)
        values = (bits * (1 << np.arange(depth - 1, -1, -1))).sum(axis=2)[:, :width]
        samples = values[..., None].astype(np.float32)
        if colour == 0:
            samples /= (1 << depth) - 1
    if colour == 3:
        if palette is None:
            raise ImageError("the palette PNG has no PLTE chunk: send a valid PNG file")
        index = (samples[..., 0] * (255 if depth == 8 else 1)).round().astype(np.int64)
        if index.max() >= len(palette):
            raise ImageError("the PNG uses a colour beyond its palette: send a valid PNG file")
        alpha = np.ones(len(palette), np.float32)
        if transparency is not None:
            alpha[:len(transparency)] = transparency[:len(palette)] / 255
        samples = np.concatenate([palette[index] / 255, alpha[index][..., None]], axis=2).astype(np.float32)
        channels = 4
    grey = samples[..., 0] if channels in (1, 2) else samples[..., :3] @ np.float32([0.299, 0.587, 0.114])
    if channels in (2, 4):
        grey = grey * samples[..., -1]  # over black
    return np.clip(grey, 0, 1).astype(np.float32)


def png(gray: np.ndarray) -> bytes:
    """An 8-bit grey PNG of `gray` (H, W): floats in [0, 1] or uint8."""
    pixels = np.asarray(gray)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# --- PGM ---------------------------------------------------------------------------------------
#
# "P5" (binary) or "P2" (ASCII), whitespace-separated width, height and maximum value (comments
# start with '#'), one whitespace byte, then the samples (two bytes each when the maximum > 255).


def _pgm_header(data: bytes) -> tuple[int, int, int, int]:
    fields, at = [], 2
    while len(fields) < 3:
        while at < len(data) and data[at:at + 1].isspace():
            at += 1
        if data[at:at + 1] == b"#":
            while at < len(data) and data[at:at + 1] not in (b"\n", b"\r"):
                at += 1
            continue
        start = at
        while at < len(data) and not data[at:at + 1].isspace():
            at += 1
        if start == at or not data[start:at].isdigit():
            raise ImageError("the PGM header is not 'P5 width height maxval': send a valid PGM or a PNG")
        fields.append(int(data[start:at]))
    width, height, maxval = fields
    if not (width and height and 0 < maxval < 65536):
        raise ImageError("the PGM header has a zero size or a maximum value outside 1..65535")
    return height, width, maxval, at + 1


def _decode_pgm(data: bytes) -> np.ndarray:
    height, width, maxval, at = _pgm_header(data)
    count = height * width
    if data[:2] == b"P2":
        try:
            values = np.array(data[at:].split()[:count], dtype=np.int64)
        except ValueError:
            raise ImageError("the ASCII PGM holds something that is not a number") from None
    else:
        dtype = np.dtype(">u2" if maxval > 255 else np.uint8)
        values = np.frombuffer(data[at:at + count * dtype.itemsize], dtype)
    if len(values) != count:
        raise ImageError(f"the PGM is truncated: {len(values)} of {count} pixels")
    return np.clip(values.reshape(height, width).astype(np.float32) / maxval, 0, 1)
