"""Build a training data set from a folder or zip of images: square, one resolution, RGB, labelled.

Every source entry either becomes one image of the set (converted where needed: grayscale, alpha
composited on white, CMYK, palette, EXIF rotation) or is skipped for one reason (not an image,
corrupt, truncated, too small, duplicate, no label, too many pixels, a file too large to be an image,
a symlink loop, a FIFO, ...). Counts by reason are printed and stored in dataset.json; the set is
published only when complete.

Memory stays bounded by the pixel budget (``BuildOptions.pixel_budget``): an image's size is read
from its header and checked before it is decoded, and a file larger than any image of the budget
could be (``max_file_bytes``) is skipped from its declared size, without being read.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from ..errors import UserError
from .labels import LabelTable, load_label_file, parse_dataset_json
from .sources import Skip, Source, is_utf8, printable_name
from .writer import DatasetWriter

CROPS = ("center", "pad")
# Leading bytes of the image formats Pillow reads: such a file that fails to open is corrupt, not "not an image".
SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF",
              b"\x00\x00\x00\x0cjP", b"qoif")
GRAY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
MIN_PIXEL_BUDGET = 4096 * 4096
MAX_LABELS_BYTES = 256 * 2 ** 20   # a source's dataset.json: ~100 bytes an image, so millions of images
METADATA_ROOM = 16 * 2 ** 20   # EXIF, ICC profiles, thumbnails: a few MB in the worst real files


@dataclass(frozen=True)
class BuildOptions:
    """resolution: output side; crop: 'center' (crop to the middle square) or 'pad' (letterbox);
    min_size: shortest source side accepted (default resolution // 2); background: pad and alpha colour."""

    resolution: int
    crop: str = "center"
    min_size: int | None = None
    background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int | None = None

    def __post_init__(self):
        if self.resolution < 4:
            raise UserError(f"resolution must be at least 4, got {self.resolution}")
        if self.crop not in CROPS:
            raise UserError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.max_pixels is not None and self.max_pixels < self.resolution ** 2:
            raise UserError(f"max_pixels {self.max_pixels} is below one output image "
                            f"({self.resolution}² = {self.resolution ** 2} pixels)")

    @property
    def pixel_budget(self) -> int:
        """Most source pixels decoded for one image: ``max_pixels``, else 8× the output area but at
        least 4096² (16.8 MP: ordinary photos and drawings fit; decoded RGBA that is 64 MiB)."""
        if self.max_pixels is not None:
            return self.max_pixels
        return max(8 * self.resolution ** 2, MIN_PIXEL_BUDGET)

    @property
    def max_file_bytes(self) -> int:
        """Largest source file read: an uncompressed 16-bit RGBA image of the pixel budget (8 bytes a
        pixel) plus room for metadata. Anything larger cannot be an image we would decode."""
        return self.pixel_budget * 8 + METADATA_ROOM

    @property
    def smallest(self) -> int:
        return self.resolution // 2 if self.min_size is None else self.min_size


@dataclass
class BuildReport:
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        def fmt(c: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
        return f"{self.written} images; skipped: {fmt(self.skipped)}; converted: {fmt(self.converted)}"


# --------------------------------------------------------------------------- one image


def open_image(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Read the header, check the size against ``max_pixels`` (before any pixel is decoded), then
    decode fully (so truncation shows now, not later); or raise Skip."""
    try:
        with warnings.catch_warnings():
            # Our pixel budget (well below Pillow's bomb warning) decides; no warning for what it refuses.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))   # lazy: only the header is parsed
        w, h = image.size
        if max_pixels is not None and w * h > max_pixels:
            raise Skip("too_many_pixels")
        image.load()
    except Skip:
        raise
    except Image.DecompressionBombError:
        raise Skip("too_many_pixels") from None
    except UnidentifiedImageError:
        raise Skip("corrupt" if data.startswith(SIGNATURES) else "not_image") from None
    except Exception as e:   # Pillow raises OSError, SyntaxError, ValueError, zlib/struct errors on bad data
        raise Skip("truncated" if "truncated" in str(e) else "corrupt") from None
    return image


def _gray_to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in ("1", "L"):
        return image.convert("L")
    arr = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and arr.max() <= 1.0:
        arr = arr * 255.0
    elif arr.max() > 255:   # 16-bit samples
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> tuple[Image.Image, list[str]]:
    """Any Pillow mode → RGB, and the conversions it took (report keys)."""
    done = []
    if _orientation(image) not in (0, 1):
        image = ImageOps.exif_transpose(image)
        done.append("exif_rotated")
    has_alpha = image.mode in ALPHA_MODES or "transparency" in image.info
    if image.mode in GRAY_MODES or image.mode in ("LA", "La"):
        done.append("grayscale")
        image = _gray_to_8bit(image) if image.mode in GRAY_MODES else image
    elif image.mode == "CMYK":
        done.append("cmyk")
    elif image.mode in ("P", "PA"):
        done.append("palette")
    elif image.mode not in ("RGB", "RGBA", "RGBa"):
        done.append("other_mode")
    if has_alpha:
        done.append("alpha")
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, background + (255,)), rgba)
    try:
        return image.convert("RGB"), done
    except (ValueError, OSError):
        raise Skip("unsupported_mode") from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:   # unreadable EXIF is not worth losing the image over
        return 1


def square(image: Image.Image, options: BuildOptions) -> Image.Image:
    """Centre-crop or pad to a square, then resize (Lanczos) to the output resolution."""
    w, h = image.size
    if w != h:
        if options.crop == "center":
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            image = image.crop((left, top, left + s, top + s))
        else:
            s = max(w, h)
            canvas = Image.new("RGB", (s, s), options.background)
            canvas.paste(image, ((s - w) // 2, (s - h) // 2))
            image = canvas
    if image.size[0] != options.resolution:
        image = image.resize((options.resolution, options.resolution), Image.LANCZOS)
    return image


def prepare(data: bytes, options: BuildOptions) -> tuple[Image.Image, list[str], str]:
    """Source bytes → (square RGB image, conversions, pixel hash of the decoded source) or Skip."""
    image = open_image(data, options.pixel_budget)
    rgb, done = to_rgb(image, options.background)
    if min(rgb.size) < options.smallest:
        raise Skip("too_small")
    digest = hashlib.sha256(rgb.tobytes() + str(rgb.size).encode()).hexdigest()
    return square(rgb, options), done, digest


# --------------------------------------------------------------------------- the set


def source_labels(src: Source, labels: str | Path | None) -> LabelTable | None:
    """The labels asked for, else the source's own dataset.json if it has labels, else None."""
    if labels is not None:
        return load_label_file(labels)
    if src.has("dataset.json"):
        try:
            data = src.read("dataset.json", MAX_LABELS_BYTES)
        except Skip as s:
            raise UserError(f"{src.path}/dataset.json cannot be read for labels ({s.reason}, at most "
                            f"{MAX_LABELS_BYTES // 2 ** 20} MiB): remove it or give --labels") from None
        try:
            return parse_dataset_json(data, f"{src.path}/dataset.json")
        except UserError:
            return None   # a dataset.json without usable labels: build an unlabelled set
    return None


def build_dataset(src: str | Path, out: str | Path, options: BuildOptions, labels: str | Path | None = None,
                  progress: bool = True) -> BuildReport:
    """Convert every file of src (folder or zip) into the data set out (folder or .zip)."""
    src_path, out_path = Path(src), Path(out)
    if out_path.resolve() == src_path.resolve():
        raise UserError("OUT must differ from SRC (the source would be replaced)")
    source = Source(src_path, exclude=out_path)
    try:
        table = source_labels(source, labels)
        report = _convert_all(source, out_path, options, table, progress)
    finally:
        source.close()
    return report


def _convert_all(source: Source, out: Path, options: BuildOptions, table: LabelTable | None,
                 progress: bool) -> BuildReport:
    report = BuildReport(skipped=Counter(source.skipped))
    with DatasetWriter(out, options.resolution, label_names=table.label_names if table else None) as writer:
        seen: set[str] = set()
        sources: list[list[str]] = []
        for name in tqdm(source.names, desc="images", unit="file", disable=not progress):
            try:
                written = _convert_one(source, name, options, table, seen, writer, report)
                # A name that is not UTF-8 is stored escaped (JSON cannot hold the raw bytes) and reported.
                sources.append([written, printable_name(name)])
                if not is_utf8(name):
                    report.converted["name_not_utf8"] += 1
            except Skip as s:
                report.skipped[s.reason] += 1
        if report.written == 0:
            raise UserError(f"no usable images in {source.path} ({report.summary()})")
        writer.skipped.update(report.skipped)
        writer.converted.update(report.converted)
        writer.extra["sources"] = sources
        writer.extra["options"] = {"crop": options.crop, "min_size": options.smallest}
    return report


def _convert_one(source: Source, name: str, options: BuildOptions, table: LabelTable | None, seen: set[str],
                 writer: DatasetWriter, report: BuildReport) -> str:
    try:
        data = source.read(name, options.max_file_bytes)
    except Skip:
        raise
    except Exception:   # OSError from a folder; BadZipFile (bad CRC), zlib errors from a zip member
        raise Skip("unreadable") from None
    try:
        image, done, digest = prepare(data, options)
    except Skip:
        raise
    except Exception:   # whatever else a broken file provokes: count it, keep going
        raise Skip("corrupt") from None
    if digest in seen:
        raise Skip("duplicate")
    vector, attributes = table.lookup(name) if table else (None, None)
    if table is not None and vector is None:
        raise Skip("no_label")
    seen.add(digest)
    report.converted.update(done)
    report.written += 1
    return writer.add(image, label=vector, attributes=attributes)
