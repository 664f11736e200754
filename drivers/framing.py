"""Frame decoders for serial magnetic stripe readers: bytes in (any chunking), swipes
out. Pure and incremental; a bounded buffer; bad frames are counted and dropped.

ASCII framing (most serial and USB-serial readers): optional STX (0x02) or ESC before,
tracks back to back or separated by CR/LF, optional CR/LF or ETX (0x03) after. A
swipe is complete at LF or ETX, at the next STX, when the member's track has arrived
(so the till does not wait for the rest), or when the reader goes quiet (`flush`).

MSR206/MSR605/MSR606 ESC protocol: the host sends reset `ESC a` and ISO read `ESC r`;
the reader answers `ESC s`, then per track `ESC 01|02|03` and the track with its
sentinels (no LRC), `ESC +` for an empty track and `ESC *` for a failed one, closed
by `? FS ESC` and a status byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import FrameError
from drivers.magstripe import END, FAILED, Swipe, Track, parse_track

FRAME_BYTES_MAX = 512  # three full tracks with framing are under 250 bytes
STX, ETX, ESC, CR, LF, FS = 0x02, 0x03, 0x1B, 0x0D, 0x0A, 0x1C
MSR_RESET = b"\x1ba"
MSR_READ_ISO = b"\x1br"
MSR_STATUS = {
    ord("0"): None,
    ord("1"): "the reader reports a read/write error",
    ord("2"): "the reader reports a command format error",
    ord("4"): "the reader reports an invalid command",
    ord("9"): "bad swipe: swipe the card again, steadily",
}


@dataclass
class Counters:
    swipes: int = 0
    bad_frames: int = 0
    dropped_bytes: int = 0
    last_error: str = ""


@dataclass
class Result:
    """What one feed produced: complete swipes and the errors of dropped frames."""

    swipes: list[Swipe] = field(default_factory=list)
    errors: list[FrameError] = field(default_factory=list)


class AsciiDecoder:
    def __init__(self, member_track: int = 2, with_lrc: bool = False) -> None:
        self.member_track = member_track
        self.with_lrc = with_lrc
        self.counters = Counters()
        self._tracks: list[Track] = []
        self._current: bytearray | None = None  # the track being received, from its start sentinel
        self._current_no = 0
        self._lrc_pending = False  # the end sentinel arrived; one LRC byte follows
        self._emitted = False  # the member's track went out early; drop the rest of this swipe
        self._size = 0
        self._seen: set[int] = set()  # tracks begun in this swipe, read or not

    def _bad(self, out: Result, error: FrameError) -> None:
        self.counters.bad_frames += 1
        self.counters.last_error = str(error)
        out.errors.append(error)

    def _finish_track(self, out: Result) -> None:
        raw = bytes(self._current or b"")
        self._current, self._lrc_pending = None, False
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            self._bad(out, FrameError(f"track {self._current_no}: bytes that are not ASCII"))
            return
        try:
            track = parse_track(self._current_no, text, with_lrc=self.with_lrc and text[1:] != FAILED + END)
        except FrameError as exc:
            self._bad(out, exc)
            return
        self._tracks.append(track)
        if track.number == self.member_track and not self._emitted:
            self._emit(out)
            self._emitted = True

    def _emit(self, out: Result) -> None:
        if self._tracks:
            self.counters.swipes += 1
            out.swipes.append(Swipe(tuple(self._tracks)))
        self._tracks = []

    def _end_swipe(self, out: Result) -> None:
        if self._current is not None:
            self.counters.dropped_bytes += len(self._current)
            self._bad(out, FrameError(f"track {self._current_no} was cut off: a half frame"))
            self._current = None
        if not self._emitted:
            self._emit(out)
        self._tracks, self._emitted, self._size, self._lrc_pending = [], False, 0, False
        self._seen = set()

    def feed(self, data: bytes) -> Result:
        out = Result()
        for byte in data:
            self._size += 1
            if self._size > FRAME_BYTES_MAX:
                self.counters.dropped_bytes += self._size
                self._bad(out, FrameError(f"a frame longer than {FRAME_BYTES_MAX} bytes was dropped"))
                self._current, self._tracks, self._size, self._lrc_pending = None, [], 0, False
                self._seen = set()
                self._emitted = True  # swallow the rest of the overlong frame until its end
                continue
            if self._lrc_pending:
                assert self._current is not None
                self._current.append(byte)
                self._finish_track(out)
                continue
            if byte in (LF, ETX):
                self._end_swipe(out)
                continue
            if byte == STX:
                self._end_swipe(out)
                continue
            if self._current is not None:
                if byte in (CR, ESC):
                    self.counters.dropped_bytes += len(self._current)
                    self._bad(out, FrameError(f"track {self._current_no} was cut off: a half frame"))
                    self._current = None
                    continue
                self._current.append(byte)
                if byte == ord(END):
                    if self.with_lrc and bytes(self._current[1:]) != FAILED.encode() + b"?":
                        self._lrc_pending = True
                    else:
                        self._finish_track(out)
                if self._current is not None and len(self._current) > 120:
                    self._bad(out, FrameError(f"track {self._current_no} is too long"))
                    self._current = None
                continue
            if byte in (ord("%"), ord(";"), ord("+")):
                number = self._track_for(byte)
                if number == 0:
                    self._end_swipe(out)  # a new swipe began without a terminator
                    number = 1 if byte == ord("%") else 2 if byte == ord(";") else 3
                self._current, self._current_no = bytearray([byte]), number
                self._seen.add(number)
                continue
            if byte in (CR, ESC):
                continue  # separators and lead-ins between tracks
            self.counters.dropped_bytes += 1  # noise between frames
        return out

    def _track_for(self, sentinel: int) -> int:
        """Which track a start sentinel opens in this swipe; 0 when it must open a new
        swipe (its track, or a later one, was already received)."""
        seen = self._seen
        if sentinel == ord("%"):
            return 0 if seen else 1
        if sentinel == ord("+"):
            return 0 if 3 in seen else 3
        if 2 not in seen:  # ';' opens track 2, or track 3 after it
            return 0 if 3 in seen else 2
        return 0 if 3 in seen else 3

    def flush(self) -> Result:
        """The reader went quiet: whatever was received is the whole swipe."""
        out = Result()
        if self._current is not None or self._tracks or self._emitted:
            self._end_swipe(out)
        self._size = 0
        return out


class Msr605Decoder:
    """Answers of the MSR206/MSR605/MSR606 family to an ISO read (`ESC r`)."""

    MARK = b"?\x1c\x1b"

    def __init__(self, member_track: int = 2) -> None:
        self.member_track = member_track
        self.counters = Counters()
        self._buf = bytearray()

    def _bad(self, out: Result, error: FrameError) -> None:
        self.counters.bad_frames += 1
        self.counters.last_error = str(error)
        out.errors.append(error)

    def feed(self, data: bytes) -> Result:
        out = Result()
        self._buf += data
        while True:
            start = self._buf.find(b"\x1bs")
            if start < 0:
                keep = 1 if self._buf.endswith(b"\x1b") else 0
                self.counters.dropped_bytes += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                break
            if start:
                self.counters.dropped_bytes += start
                del self._buf[:start]
            end = self._buf.find(self.MARK, 2)
            if end < 0 or end + len(self.MARK) >= len(self._buf):
                if len(self._buf) > FRAME_BYTES_MAX:
                    self.counters.dropped_bytes += len(self._buf)
                    self._buf.clear()
                    self._bad(out, FrameError(f"an answer longer than {FRAME_BYTES_MAX} bytes was dropped"))
                break  # wait for the rest of the answer
            status = self._buf[end + len(self.MARK)]
            block = bytes(self._buf[2:end])  # the tracks; the mark's '?' is not part of them
            del self._buf[: end + len(self.MARK) + 1]
            try:
                out.swipes.append(self._decode(block, status))
                self.counters.swipes += 1
            except FrameError as exc:
                self._bad(out, exc)
        return out

    def _decode(self, block: bytes, status: int) -> Swipe:
        if status not in MSR_STATUS:
            raise FrameError(f"the reader answered with an unknown status byte 0x{status:02x}")
        problem = MSR_STATUS[status]
        if problem:
            raise FrameError(problem)
        # split at ESC 01/02/03
        tracks: list[Track] = []
        i = 0
        while i < len(block):
            if block[i] != ESC or i + 1 >= len(block) or block[i + 1] not in (1, 2, 3):
                raise FrameError("the reader's answer is not in the ESC 1/2/3 track format")
            number = block[i + 1]
            j = i + 2
            k = j
            while k < len(block) and not (block[k] == ESC and k + 1 < len(block) and block[k + 1] in (1, 2, 3)):
                k += 1
            content = block[j:k]
            i = k
            if content == b"\x1b+":
                continue  # an empty track
            if content == b"\x1b*":
                tracks.append(Track(number, None, failed=True))
                continue
            if not content.endswith(b"?"):
                content += b"?"  # some firmware lets the closing '?' end the last track too
            try:
                text = content.decode("ascii")
            except UnicodeDecodeError:
                raise FrameError(f"track {number}: bytes that are not ASCII") from None
            tracks.append(parse_track(number, text))
        if not tracks:
            raise FrameError("the swipe carried no track data; swipe the card again")
        return Swipe(tuple(tracks))

    def flush(self) -> Result:
        return Result()
