"""Points slips on an ESC/POS printer: the picture, the printer's bytes, and the API
route writing to a real device file (a plain file, and a FIFO nobody reads: a
printer that does not take the slip)."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from terminal_agent import slip
from terminal_agent.config import parse_config
from terminal_agent.errors import ConfigError
from terminal_agent.runtime import Runtime
from terminal_agent.slip import MARGIN_PX, SlipPrinter, default_font, escpos_bytes, render

FONT = default_font()
pytestmark = pytest.mark.skipif(FONT is None, reason="no font with Persian letters (Debian: fonts-dejavu-core)")

ESC_INIT = b"\x1b@"
RASTER = b"\x1dv0"  # GS v 0: print a raster bit image
CUT = b"\x1dV"


def ink(picture: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box of the black dots."""
    box = ImageOps.invert(picture.convert("L")).getbbox()
    assert box is not None, "the slip is blank"
    return box


def rasters(data: bytes) -> list[tuple[int, int, bytes]]:
    """(width in bytes, height in dots, bits) of every raster image in printer bytes."""
    found = []
    at = data.find(RASTER)
    while at >= 0:
        width, height = struct.unpack_from("<HH", data, at + 4)  # after GS v 0 and the mode byte
        bits = data[at + 8: at + 8 + width * height]
        assert len(bits) == width * height, "a raster image is cut short"
        found.append((width, height, bits))
        at = data.find(RASTER, at + 8 + width * height)
    return found


def test_persian_is_shaped_and_laid_out_right_to_left() -> None:
    # س ل ا م: seen in its initial form, lam and alef as one ligature, meem final; drawn
    # from the right, so the first letter comes last in drawing order
    assert slip._visual("سلام") == "\ufee1\ufefc\ufeb3"
    # a Latin word and a number inside Persian keep their own order
    assert "R-0001" in slip._visual("رسید: R-0001")


def test_persian_slip_is_right_aligned_and_english_left() -> None:
    fa = render(["امتیاز کسب‌شده: ۲۵۰", "مانده امتیاز: ۱٬۲۵۰"], "fa", 384, FONT)
    en = render(["Points earned: 250", "Balance: 1,250 points"], "en", 384, FONT)
    assert fa.size[0] == en.size[0] == 384 and fa.mode == en.mode == "1"
    left, _, right, _ = ink(fa)
    assert right >= 384 - MARGIN_PX - 3 and left > MARGIN_PX + 20
    left, _, right, _ = ink(en)
    assert left <= MARGIN_PX + 3 and right < 384 - MARGIN_PX - 20


def test_a_line_wider_than_the_paper_goes_on_the_next() -> None:
    long = "• " + "هر ۱۰٬۰۰۰ ریال یک امتیاز " * 6
    one = render(["کوتاه"], "fa", 384, FONT)
    wrapped = render([long], "fa", 384, FONT)
    assert wrapped.size[1] >= one.size[1] + 3 * (wrapped.size[1] - one.size[1]) // 4 > one.size[1]
    left, _, right, _ = ink(wrapped)
    assert left >= MARGIN_PX - 2 and right <= 384 - MARGIN_PX + 2  # nothing runs off the paper
    unbroken = render(["x" * 300], "en", 200, FONT)  # a word wider than the paper breaks between letters
    assert ink(unbroken)[2] <= 200 - MARGIN_PX + 2


def test_printer_bytes_hold_the_picture_then_the_cut() -> None:
    picture = render(["Points earned: 250"], "en", 384, FONT)
    data = escpos_bytes(picture, cut=True)
    assert data.startswith(ESC_INIT) and CUT in data[-8:]
    [(width, height, bits)] = rasters(data)
    assert (width * 8, height) == picture.size
    # the dots sent are the picture's (1 = print a dot)
    assert any(bits) and bits == ImageOps.invert(picture.convert("L")).convert("1").tobytes()
    assert CUT not in escpos_bytes(picture, cut=False)


def test_an_empty_slip_is_refused() -> None:
    with pytest.raises(slip.PrinterError, match="at least one line"):
        render([], "fa", 384, FONT)


def _sale_id(client: TestClient, manager_headers: dict[str, str], key: str = "s1") -> str:
    r = client.post("/v1/members", json={"name": "Leila", "mobile": "09121112233"}, headers=manager_headers)
    member = r.json()["id"]
    client.post(f"/v1/members/{member}/cards", json={"number": "6395000000000101"}, headers=manager_headers)
    r = client.post("/v1/sales", json={
        "idempotency_key": key, "card_number": "6395000000000101", "receipt_ref": "R-1",
        "lines": [{"sku": "A1", "name": "Rice", "category": "grocery", "quantity": 2, "unit_price": 2_500_000}]})
    assert r.status_code == 200, r.text
    return str(r.json()["sale_id"])


def test_the_api_prints_a_sales_slip_on_the_device(client: TestClient, runtime: Runtime,
                                                   manager_headers: dict[str, str], tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    device.touch()
    runtime.attach_printer(SlipPrinter(device, 384, str(FONT), cut=True))
    sale_id = _sale_id(client, manager_headers)
    r = client.post(f"/v1/sales/{sale_id}/slip")
    assert r.status_code == 200, r.text
    data = device.read_bytes()
    assert r.json() == {"sale_id": sale_id, "printed": True, "bytes": len(data)}
    [(width, height, _)] = rasters(data)
    assert width * 8 == 384 and height > 100  # several lines of receipt
    english = data
    reported = client.get("/v1/status").json()["printer"]
    assert reported["device"] == str(device) and reported["last_error"] is None and reported["last_printed_at"]
    r = client.post(f"/v1/sales/{sale_id}/slip", json={"locale": "fa"})
    assert r.status_code == 200
    persian = device.read_bytes()
    assert persian != english and len(rasters(persian)) == 1  # the device got the Persian slip
    assert client.post(f"/v1/sales/{sale_id}/slip", json={"locale": "de"}).status_code == 422


def test_slip_errors_say_what_is_wrong(client: TestClient, runtime: Runtime,
                                       manager_headers: dict[str, str], tmp_path: Path) -> None:
    sale_id = _sale_id(client, manager_headers)
    r = client.post(f"/v1/sales/{sale_id}/slip")
    assert r.status_code == 409 and r.json()["code"] == "no_printer"
    runtime.attach_printer(SlipPrinter(tmp_path / "no-such-dir" / "lp0", 384, str(FONT), cut=True))
    r = client.post(f"/v1/sales/{sale_id}/slip")
    assert r.status_code == 503 and r.json()["code"] == "printer_unavailable"
    assert "no-such-dir/lp0" in r.json()["detail"] and "switched on" in r.json()["detail"]
    assert client.get("/v1/status").json()["printer"]["last_error"] == r.json()["detail"]
    assert client.post("/v1/sales/nope/slip").status_code == 404


def test_a_printer_that_does_not_take_the_slip_times_out_and_slips_queue_boundedly(
        client: TestClient, runtime: Runtime, manager_headers: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slip, "PRINT_TIMEOUT_S", 0.3)
    fifo = tmp_path / "stuck-printer"
    os.mkfifo(fifo)  # opening it to write blocks until someone reads: a printer that takes nothing
    runtime.attach_printer(SlipPrinter(fifo, 384, str(FONT), cut=True))
    sale_id = _sale_id(client, manager_headers)
    answers: list[Any] = [client.post(f"/v1/sales/{sale_id}/slip").json() for _ in range(slip.PRINTS_PENDING_MAX)]
    assert {a["code"] for a in answers} == {"printer_timeout"}
    busy = client.post(f"/v1/sales/{sale_id}/slip")
    assert busy.status_code == 503 and busy.json()["code"] == "printer_busy"
    # the printer comes back: every slip still waiting reaches it, whole
    received = bytearray()
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    done = threading.Event()

    def drain() -> None:
        while not done.wait(0.02):
            try:
                received.extend(os.read(reader, 1 << 16))
            except BlockingIOError:
                pass

    t = threading.Thread(target=drain)
    t.start()
    try:
        assert _within(10.0, lambda: all(j.done() for j in runtime.printer._jobs))  # type: ignore[union-attr]
        r = client.post(f"/v1/sales/{sale_id}/slip")  # and it prints again at once
        assert r.status_code == 200, r.text
        one = r.json()["bytes"]
        assert _within(10.0, lambda: len(received) >= (slip.PRINTS_PENDING_MAX + 1) * one)
        assert len(received) == (slip.PRINTS_PENDING_MAX + 1) * one
        assert len(rasters(bytes(received))) == slip.PRINTS_PENDING_MAX + 1
    finally:
        done.set()
        t.join()
        os.close(reader)


def _within(seconds: float, condition: Any) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        threading.Event().wait(0.05)
    return bool(condition())


def test_printer_config_is_checked_at_start(tmp_path: Path) -> None:
    cfg = parse_config({"printer": {"device": "lp0"}}, "c.toml", tmp_path)
    printer = SlipPrinter.from_config(cfg)
    assert printer is not None and printer.device == tmp_path / "lp0" and printer.font_path == FONT
    printer.close()
    assert SlipPrinter.from_config(parse_config({}, "c.toml", tmp_path)) is None
    with pytest.raises(ConfigError, match=r"c.toml: printer.font: no such font file"):
        parse_config({"printer": {"device": "lp0", "font": "missing.ttf"}}, "c.toml", tmp_path)
    with pytest.raises(ConfigError, match=r"printer.width_px"):
        parse_config({"printer": {"width_px": 50}}, "c.toml", tmp_path)
