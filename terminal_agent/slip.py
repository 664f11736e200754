"""A points slip on an ESC/POS receipt printer.

The sale's receipt lines are drawn as a picture and sent as ESC/POS raster bytes
(python-escpos) to the printer's device file. A picture, not the printer's text
mode: Persian needs its letters joined (arabic-reshaper) and laid out right to left
(python-bidi), which no printer code page does, and most Iranian till printers have
no Persian code page at all. Drawing is pure (lines in, bytes out); the one write to
the device happens on the printer's own thread, bounded by a timeout, so a jammed
or unplugged printer never holds up the till.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal_agent.errors import AgentError

if TYPE_CHECKING:
    from PIL.Image import Image

    from terminal_agent.config import AgentConfig

# Fonts tried when printer.font is empty: each covers Persian and Latin letters.
DEFAULT_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
)
MARGIN_PX = 8
INK_THRESHOLD = 160  # grey levels darker than this become a dot on the paper
LINE_SPACING = 1.35  # line height as a multiple of the font size
SLIP_LINES_MAX = 200  # a receipt is a few lines; this bounds a pathological one
PRINT_TIMEOUT_S = 10.0  # a slip that has not reached the device by then is reported as failed
PRINTS_PENDING_MAX = 4  # slips queued behind a slow printer before new ones are refused


class PrinterError(AgentError):
    """The slip could not be printed; the message says why and what to check."""

    def __init__(self, message: str, code: str = "printer_unavailable", status: int = 503) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def default_font() -> str | None:
    return next((f for f in DEFAULT_FONTS if Path(f).is_file()), None)


@functools.lru_cache(maxsize=8)
def _font(path: str, size: int) -> Any:
    from PIL import ImageFont

    # Pillow's basic layout on every machine (raqm, where present, would shape and
    # reorder a second time what _visual already did): one picture everywhere
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _visual(line: str) -> str:
    """A line in the order its glyphs are drawn: Persian letters in their joined forms,
    right-to-left runs reversed (Latin words and numbers inside stay left to right)."""
    import arabic_reshaper
    from bidi import get_display

    return str(get_display(arabic_reshaper.reshape(line)))


def _wrapped(line: str, font: Any, room_px: int) -> list[str]:
    """The line in pieces that each fit `room_px`, broken between words (a word wider
    than the paper is broken between letters)."""
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(_visual(candidate)) <= room_px:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = word
        while font.getlength(_visual(current)) > room_px and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and font.getlength(_visual(current[:cut])) > room_px:
                cut -= 1
            pieces.append(current[:cut])
            current = current[cut:]
    pieces.append(current)
    return pieces


def render(lines: list[str], locale: str, width_px: int, font_path: str, font_size: int = 24) -> "Image":
    """The slip as a one-bit picture `width_px` wide: Persian right-aligned, English left;
    a line wider than the paper continues on the next."""
    from PIL import Image, ImageDraw

    if not lines:
        raise PrinterError("a slip needs at least one line", "empty_slip", 422)
    font = _font(font_path, font_size)
    step = int(font_size * LINE_SPACING)
    room = width_px - 2 * MARGIN_PX
    shown = [_visual(piece) for line in lines for piece in _wrapped(line, font, room)][:SLIP_LINES_MAX]
    # drawn in grey levels and made one-bit at the end: Pillow lays text out wider in a
    # one-bit picture than it measures it, and lines would run off the paper
    picture = Image.new("L", (width_px, MARGIN_PX * 2 + step * len(shown)), 255)
    draw = ImageDraw.Draw(picture)
    for i, text in enumerate(shown):
        y = MARGIN_PX + i * step
        if locale == "fa":
            draw.text((width_px - MARGIN_PX, y), text, font=font, fill=0, anchor="ra")
        else:
            draw.text((MARGIN_PX, y), text, font=font, fill=0, anchor="la")
    return picture.point(lambda level: 255 if level >= INK_THRESHOLD else 0, mode="1")


def escpos_bytes(picture: "Image", cut: bool) -> bytes:
    """The ESC/POS commands that print the picture (raster image), feed and cut."""
    from escpos.printer import Dummy

    printer = Dummy()
    # the profile's paper width: without it python-escpos prints a warning to stdout
    printer.profile.profile_data = {**printer.profile.profile_data,
                                    "media": {"width": {"pixels": picture.width}}}
    printer.hw("INIT")
    printer.image(picture, impl="bitImageRaster")
    if cut:
        printer.cut()
    else:
        printer.ln(4)
    return bytes(printer.output)


def write_to_device(device: Path, data: bytes) -> None:
    try:
        with open(device, "wb", buffering=0) as out:
            out.write(data)
    except OSError as exc:
        raise PrinterError(f"cannot write to the printer at {device}: {exc.strerror or exc}; "
                           "check that it is switched on, plugged in and that the agent may write to "
                           "the device (printer.device in the config)") from None


class SlipPrinter:
    """The configured printer: one writer thread, a bounded queue, a timeout per slip."""

    def __init__(self, device: Path, width_px: int, font_path: str, cut: bool) -> None:
        self.device = device
        self.width_px = width_px
        self.font_path = font_path
        self.cut = cut
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="slip-printer")
        # writes not finished yet, including one that outlived its timeout in a stuck device
        self._jobs: set[asyncio.Future[int]] = set()
        self.last_printed_at: str | None = None
        self.last_error: str | None = None

    @classmethod
    def from_config(cls, cfg: "AgentConfig") -> "SlipPrinter | None":
        if not cfg.printer.device:
            return None
        return cls(cfg.resolve(cfg.printer.device), cfg.printer.width_px, cfg.printer_font, cfg.printer.cut)

    def slip(self, lines: list[str], locale: str) -> bytes:
        return escpos_bytes(render(lines, locale, self.width_px, self.font_path), self.cut)

    def status(self) -> dict[str, Any]:
        """For `loyalty-agent status`: the device, slips still waiting, the last outcome."""
        return {"device": str(self.device), "pending": sum(1 for j in self._jobs if not j.done()),
                "last_printed_at": self.last_printed_at, "last_error": self.last_error}

    async def print_lines(self, lines: list[str], locale: str) -> int:
        """Print the lines; the number of bytes sent to the printer."""
        try:
            sent = await self._print(lines, locale)
        except PrinterError as exc:
            self.last_error = str(exc)
            raise
        self.last_printed_at, self.last_error = datetime.now(timezone.utc).isoformat(timespec="seconds"), None
        return sent

    async def _print(self, lines: list[str], locale: str) -> int:
        self._jobs = {j for j in self._jobs if not j.done()}
        if len(self._jobs) >= PRINTS_PENDING_MAX:
            raise PrinterError(f"{len(self._jobs)} slips are still waiting for the printer at {self.device}; "
                               "check the printer", "printer_busy")
        # drawing (tens of milliseconds) happens on the printer's thread too, off the loop
        # that carries card reads and sales
        job = asyncio.get_running_loop().run_in_executor(self._thread, self._render_and_write, lines, locale)
        self._jobs.add(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job), PRINT_TIMEOUT_S)
        except TimeoutError:
            raise PrinterError(f"the printer at {self.device} took more than {PRINT_TIMEOUT_S:g} s to take "
                               "the slip; check paper and cable", "printer_timeout", 504) from None

    def _render_and_write(self, lines: list[str], locale: str) -> int:
        data = self.slip(lines, locale)
        write_to_device(self.device, data)
        return len(data)

    def close(self) -> None:
        # a write stuck in a dead device cannot be interrupted: do not wait for it
        self._thread.shutdown(wait=False, cancel_futures=True)
