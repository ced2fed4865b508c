"""Small ICC profiles written from scratch for the colour-management tests.

Nothing is downloaded: each profile is assembled here byte by byte after
ICC.1:2022 (header clause 7.2, tag table 7.3, tag types clause 10) and
ICC.1:2001-04 (the v2 ``desc`` type).  LittleCMS reads all of them, which the
tests check, so they are fair inputs for comparing boda with LittleCMS.

- :func:`rgb_profile`: a matrix/TRC display profile (``rXYZ``/``gXYZ``/``bXYZ``
  + tone curves), given primaries, a white and a tone curve tag;
- :func:`gray_profile`: ``kTRC`` only;
- :func:`lut_profile`: a device -> Lab ``lut16Type`` (``mft2``) table in
  ``A2B0``/``A2B1``, for CMYK (a toy press with dot gain) or RGB.
"""

from __future__ import annotations

import struct

import numpy as np

PCS_WHITE = np.array([0.9642, 1.0, 0.8249])  # D50 as ICC profiles store it
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)

SPACES = {  # primaries, white (CIE 1931 xy)
    "srgb": (((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290)),
    "p3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), (0.3127, 0.3290)),
    "adobe": (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), (0.3127, 0.3290)),
    "prophoto": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), (0.3457, 0.3585)),
}


def fixed(value: float) -> bytes:
    """One s15Fixed16Number (a signed 32-bit integer over 65536)."""
    return struct.pack(">i", round(value * 65536))


def xyz_of(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def adapt(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Bradford matrix taking colours seen under white ``source`` to white ``target``."""
    gain = (BRADFORD @ target) / (BRADFORD @ source)
    return np.linalg.inv(BRADFORD) @ np.diag(gain) @ BRADFORD


def colourant_matrix(space: str) -> np.ndarray:
    """Linear RGB -> XYZ D50 of ``space`` (the columns an ICC profile stores)."""
    primaries, white_xy = SPACES[space]
    columns = np.stack([xyz_of(*p) for p in primaries], axis=1)
    white = xyz_of(*white_xy)
    return adapt(white, PCS_WHITE) @ (columns * np.linalg.solve(columns, white))


# ------------------------------------------------------------------ tag payloads
def tag_text(text: str) -> bytes:
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def tag_desc(text: str) -> bytes:
    """v2 textDescriptionType: ASCII count + string, empty Unicode and ScriptCode parts."""
    ascii_part = text.encode("ascii") + b"\0"
    empty = bytes(4 + 4 + 3 + 67)  # Unicode code and count, ScriptCode code, count, string
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_part)) + ascii_part + empty


def tag_xyz(values) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(fixed(v) for v in values)


def curve_gamma(gamma: float) -> bytes:
    """curveType with one entry: a u8Fixed8Number gamma."""
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def curve_table(values) -> bytes:
    """curveType with a table of uint16 samples over [0, 1]."""
    samples = np.round(np.clip(np.asarray(values), 0, 1) * 65535).astype(">u2")
    body = b"curv" + bytes(4) + struct.pack(">I", samples.size) + samples.tobytes()
    return body + bytes(-len(body) % 4)


def curve_parametric(function: int, *params: float) -> bytes:
    """parametricCurveType: function type, reserved, then g, a, b, c, d, e, f as needed."""
    return b"para" + bytes(4) + struct.pack(">HH", function, 0) + b"".join(fixed(p) for p in params)


SRGB_CURVE = curve_parametric(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
PROPHOTO_CURVE = curve_parametric(3, 1.8, 1.0, 0.0, 1 / 16, 1 / 32)
ADOBE_CURVE = curve_gamma(563 / 256)


def assemble(tags: list[tuple[bytes, bytes]], space: bytes, device_class: bytes = b"mntr",
             pcs: bytes = b"XYZ ", version: int = 2) -> bytes:
    """A whole profile: 128-byte header, tag table, tag data (each 4-byte aligned)."""
    table_end = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        body += bytes(-(table_end + len(body)) % 4)
        table += signature + struct.pack(">II", table_end + len(body), len(payload))
        body += payload
    size = table_end + len(body)
    header = (
        struct.pack(">I", size) + b"boda" + bytes([version, 0x20, 0, 0]) + device_class + space
        + pcs + bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4) + bytes(8)
        + struct.pack(">I", 1)  # relative colorimetric
        + b"".join(fixed(v) for v in PCS_WHITE) + b"boda" + bytes(16) + bytes(28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def rgb_profile(space: str, curve: bytes, name: str | None = None, *,
                matrix: np.ndarray | None = None) -> bytes:
    """A v2 matrix/TRC RGB display profile of ``space`` with tone curve tag ``curve``."""
    matrix = colourant_matrix(space) if matrix is None else matrix
    white = xyz_of(*SPACES[space][1])
    chad = adapt(white, PCS_WHITE)
    return assemble([
        (b"desc", tag_desc(name or f"{space} (boda test)")),
        (b"cprt", tag_text("no rights reserved")),
        (b"wtpt", tag_xyz(PCS_WHITE)),
        (b"rXYZ", tag_xyz(matrix[:, 0])), (b"gXYZ", tag_xyz(matrix[:, 1])),
        (b"bXYZ", tag_xyz(matrix[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
        (b"chad", b"sf32" + bytes(4) + b"".join(fixed(v) for v in chad.ravel())),
    ], b"RGB ")


def gray_profile(curve: bytes, name: str = "gray (boda test)") -> bytes:
    return assemble([
        (b"desc", tag_desc(name)), (b"cprt", tag_text("no rights reserved")),
        (b"wtpt", tag_xyz(PCS_WHITE)), (b"kTRC", curve),
    ], b"GRAY")


# ------------------------------------------------------------------ LUT profiles
def srgb_decode(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def xyz_d50_to_lab(xyz: np.ndarray) -> np.ndarray:
    t = xyz / PCS_WHITE
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_d50_to_xyz(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    t = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    return t * PCS_WHITE


def srgb_to_lab_d50(rgb: np.ndarray) -> np.ndarray:
    return xyz_d50_to_lab(srgb_decode(rgb) @ colourant_matrix("srgb").T)


def lab_d50_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Lab D50 -> sRGB encoded in [0, 1], clipped (a reference for LUT profiles)."""
    linear = np.clip(lab_d50_to_xyz(lab) @ np.linalg.inv(colourant_matrix("srgb")).T, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


DOT_GAIN = 0.75  # printed coverage = ink ** DOT_GAIN: 50 % ink prints as 59 %


def toy_press(cmyk: np.ndarray) -> np.ndarray:
    """sRGB of CMYK ink amounts on a toy press: the naive formula with dot gain."""
    c, m, y, k = np.moveaxis(np.asarray(cmyk, dtype=np.float64) ** DOT_GAIN, -1, 0)
    return np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)


def _lut16(inputs: int, grid: int, lab: np.ndarray) -> bytes:
    """lut16Type (``mft2``, ICC.1:2004-10 10.9): identity matrix and linear 2-entry curves,
    a ``grid``-point table of legacy 16-bit Lab (L * 652.8, (a + 128) * 256)."""
    identity = b"".join(fixed(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ramp = struct.pack(">HH", 0, 65535)
    encoded = np.stack([lab[..., 0] * 652.8, (lab[..., 1] + 128) * 256,
                        (lab[..., 2] + 128) * 256], -1)
    table = np.round(np.clip(encoded, 0, 65535)).astype(">u2").tobytes()
    return (b"mft2" + bytes(4) + bytes([inputs, 3, grid, 0]) + identity
            + struct.pack(">HH", 2, 2) + ramp * inputs + table + ramp * 3)


def lut_profile(kind: str, name: str | None = None) -> bytes:
    """A v2 profile whose ``A2B0``/``A2B1`` is a device -> Lab table.

    ``kind``: ``"cmyk"`` (the :func:`toy_press`, a 9-point grid), ``"rgb-p3"``
    (Display P3 pixels, a 17-point grid) or ``"rgb-srgb"`` (sRGB pixels).
    """
    if kind == "cmyk":
        grid, inputs = 9, 4
        axis = np.linspace(0, 1, grid)
        device = np.stack(np.meshgrid(*[axis] * 4, indexing="ij"), -1).reshape(-1, 4)
        lab = srgb_to_lab_d50(toy_press(device))
        space, device_class = b"CMYK", b"prtr"
    else:
        grid, inputs = 17, 3
        axis = np.linspace(0, 1, grid)
        device = np.stack(np.meshgrid(*[axis] * 3, indexing="ij"), -1).reshape(-1, 3)
        linear = srgb_decode(device)  # P3 and sRGB share the tone curve
        lab = xyz_d50_to_lab(linear @ colourant_matrix(kind.split("-")[1]).T)
        space, device_class = b"RGB ", b"mntr"
    table = _lut16(inputs, grid, lab)
    return assemble([
        (b"desc", tag_desc(name or f"{kind} LUT (boda test)")),
        (b"cprt", tag_text("no rights reserved")), (b"wtpt", tag_xyz(PCS_WHITE)),
        (b"A2B0", table), (b"A2B1", table),
    ], space, device_class, pcs=b"Lab ")
