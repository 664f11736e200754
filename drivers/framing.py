"""Frame decoders for serial magnetic stripe readers: bytes in (any chunking), swipes
out. Pure and incremental, with a bounded buffer; bad frames are counted and dropped
(and reported in the Result), never raised.

ASCII framing (most serial and USB-serial readers): optional STX (0x02) or ESC before,
tracks back to back or separated by CR/LF, track 3 opening with '+' or ';', a failed
track as `%E?`/`;E?`/`+E?`, optional CR/LF or ETX (0x03) after. A swipe goes out as
soon as the member's track has arrived (the till does not wait for the rest), or at
a CR/LF once the member's track can no longer come (it failed, or a later track is
there: the fallback track is used). It ends at ETX, at the next STX, at a track that
repeats or goes back (a new swipe), or when the reader goes quiet (the caller calls
`flush`). CR/LF alone never end it: readers that put each track on its own line
would otherwise turn track 3 into a swipe of its own.

MSR206/MSR605/MSR606 ESC protocol: the host sends reset `ESC a` and ISO read `ESC r`;
the reader answers `ESC s`, then per track `ESC 01|02|03` and the track with its
sentinels (no LRC), `ESC +` for an empty track and `ESC *` for a failed one, closed
by `? FS ESC` and a status byte. The communication test `ESC e` is answered `ESC y`:
the decoder counts those answers (Result.test_answers), so the driver knows the
reader is there and listening.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import FrameError
from drivers.magstripe import END, FAILED, TRACK_MAX_CHARS, Swipe, Track, parse_track

FRAME_BYTES_MAX = 512  # one swipe or answer; three full tracks with framing are under 250 bytes
TRACK_BYTES_MAX = max(TRACK_MAX_CHARS.values())  # longer than any track: cut off, not waited for
STX, ETX, ESC, CR, LF, FS = 0x02, 0x03, 0x1B, 0x0D, 0x0A, 0x1C
_PERCENT, _SEMI, _PLUS, _END = ord("%"), ord(";"), ord("+"), ord(END)
_FAILED_BODY = (FAILED + END).encode()
_SENTINEL_OF = {1: _PERCENT, 2: _SEMI, 3: _PLUS}

MSR_RESET = b"\x1ba"
MSR_READ_ISO = b"\x1br"
MSR_TEST = b"\x1be"  # communication test
MSR_TEST_OK = b"\x1by"  # its answer
MSR_ANSWER = b"\x1bs"
MSR_MARK = b"?\x1c\x1b"  # closes the data block; the status byte follows
MSR_EMPTY_TRACK = b"\x1b+"
MSR_FAILED_TRACK = b"\x1b*"
MSR_STATUS: dict[int, str | None] = {
    ord("0"): None,
    ord("1"): "the reader reports a read/write error; swipe the card again",
    ord("2"): "the reader reports a command format error (driver and reader disagree on the protocol)",
    ord("4"): "the reader reports an invalid command (is it an MSR206/605/606?)",
    ord("9"): "bad swipe: swipe the card again, steadily",
}


@dataclass
class Counters:
    """What a decoder dropped, for status pages and tests. Messages only, never bytes."""

    swipes: int = 0
    bad_frames: int = 0  # every dropped frame or track, whatever the reason
    half_frames: int = 0  # cut off: no end sentinel, answer never closed
    overlong_frames: int = 0  # more than FRAME_BYTES_MAX (or a track over TRACK_BYTES_MAX)
    bad_tracks: int = 0  # complete but not valid: LRC, character set, length, status byte
    dropped_bytes: int = 0  # noise between frames and the bytes of dropped frames
    last_error: str = ""


@dataclass
class Result:
    """What one feed produced: complete swipes and the errors of dropped frames."""

    swipes: list[Swipe] = field(default_factory=list)
    errors: list[FrameError] = field(default_factory=list)
    noise: int = 0  # bytes that were part of no frame or answer (line noise, a reader starting up)
    test_answers: int = 0  # msr605: answers `ESC y` to the communication test


class _Decoder:
    member_track: int
    counters: Counters

    def _bad(self, out: Result, error: FrameError, kind: str, *, report: bool = True) -> None:
        self.counters.bad_frames += 1
        if kind == "half":
            self.counters.half_frames += 1
        elif kind == "overlong":
            self.counters.overlong_frames += 1
        else:
            self.counters.bad_tracks += 1
        self.counters.last_error = str(error)
        if report:
            out.errors.append(error)


class AsciiDecoder(_Decoder):
    def __init__(self, member_track: int = 2, with_lrc: bool = False) -> None:
        self.member_track = member_track
        self.with_lrc = with_lrc
        self.counters = Counters()
        self._tracks: list[Track] = []  # tracks of this swipe, parsed
        self._seen: set[int] = set()  # tracks begun in this swipe, read or not
        self._current: bytearray | None = None  # the track being received, from its start sentinel
        self._current_no = 0
        self._lrc_pending = False  # the end sentinel arrived; one LRC byte follows
        self._emitted = False  # the member's track went out early; the rest of the swipe is not needed
        self._skipping = False  # an overlong frame: drop bytes until the swipe ends
        self._frame_bytes = 0  # bytes since this swipe's first start sentinel

    # -- tracks and swipes ----------------------------------------------------------

    def _finish_track(self, out: Result) -> None:
        raw = bytes(self._current or b"")
        number = self._current_no
        self._current, self._lrc_pending = None, False
        try:
            track = parse_track(number, raw.decode("ascii"), with_lrc=self.with_lrc)
        except (UnicodeDecodeError, FrameError) as exc:
            error = exc if isinstance(exc, FrameError) else FrameError(f"track {number}: bytes that are not ASCII")
            self._bad(out, error, "track")
            track = Track(number, None, failed=True)  # a misread track: the cashier is asked to swipe again
        self._tracks.append(track)
        if track.number == self.member_track and track.pan and not self._emitted:
            self._emit(out)
            self._emitted = True

    def _emit(self, out: Result) -> None:
        if self._tracks:
            self.counters.swipes += 1
            out.swipes.append(Swipe(tuple(self._tracks)))
        self._tracks = []

    def _cut_track(self, out: Result, why: str) -> None:
        assert self._current is not None
        self.counters.dropped_bytes += len(self._current)
        self._bad(out, FrameError(f"track {self._current_no} {why}"), "overlong" if "long" in why else "half")
        self._current, self._lrc_pending = None, False

    def _end_swipe(self, out: Result) -> None:
        if self._current is not None:
            self._cut_track(out, "was cut off: a half frame")
        if not self._emitted and not self._skipping:
            self._emit(out)
        self._tracks, self._seen = [], set()
        self._emitted = self._skipping = self._lrc_pending = False
        self._frame_bytes = 0

    def _track_for(self, sentinel: int) -> int:
        """Which track a start sentinel opens in this swipe; 0 when it must open a new
        swipe (its track, or a later one, was already begun)."""
        seen = self._seen
        if sentinel == _PERCENT:
            return 0 if seen else 1
        if sentinel == _PLUS or 2 in seen:  # ';' opens track 2, or track 3 after it
            return 0 if 3 in seen else 3
        return 0 if 3 in seen else 2

    def _line_end(self, out: Result) -> None:
        """CR/LF after a track: emit now if the member's track can no longer come."""
        if self._emitted or not self._tracks:
            return
        member = self.member_track
        if member in self._seen or self._track_for(_SENTINEL_OF[member]) != member:
            self._emit(out)
            self._emitted = True

    def _cuts_current(self, byte: int) -> bool:
        """A byte that cannot be part of the track being received: a control byte, or
        a start sentinel outside the track's data set (a new track began)."""
        if byte < 0x20 or byte == _PERCENT:
            return True
        return self._current_no != 1 and byte in (_SEMI, _PLUS)

    # -- bytes in -------------------------------------------------------------------

    def feed(self, data: bytes) -> Result:
        out = Result()
        for byte in data:
            self._byte(byte, out)
        return out

    def _byte(self, byte: int, out: Result) -> None:
        if self._lrc_pending:
            assert self._current is not None
            if byte >= 0x20:  # every LRC character is printable; a control byte means there was none
                self._current.append(byte)
                self._finish_track(out)
                return
            self._finish_track(out)  # parse_track says "expected one LRC character"
        if byte in (ETX, STX):
            self._end_swipe(out)
            return
        if self._skipping:  # an overlong frame: resume at the next line end
            if byte in (CR, LF):
                self._end_swipe(out)
            else:
                self.counters.dropped_bytes += 1
            return
        if self._seen:
            self._frame_bytes += 1
            if self._frame_bytes > FRAME_BYTES_MAX:
                if self._current is not None:
                    self.counters.dropped_bytes += len(self._current)
                self._current, self._tracks = None, []
                self.counters.dropped_bytes += 1
                self._bad(out, FrameError(f"a frame longer than {FRAME_BYTES_MAX} bytes was dropped"), "overlong")
                self._skipping = True
                return
        if self._current is not None:
            if not self._cuts_current(byte):
                self._receive(byte, out)
                return
            self._cut_track(out, "was cut off: a half frame")
        if byte in (_PERCENT, _SEMI, _PLUS):
            number = self._track_for(byte)
            if number == 0:
                self._end_swipe(out)  # a new swipe began without a terminator
                number = self._track_for(byte)
            self._current, self._current_no = bytearray([byte]), number
            self._seen.add(number)
            self._frame_bytes = max(self._frame_bytes, 1)
            return
        if byte in (CR, LF):
            self._line_end(out)
            return
        if byte == ESC:
            return  # a lead-in some readers send before the tracks
        self.counters.dropped_bytes += 1  # noise between frames
        out.noise += 1

    def _receive(self, byte: int, out: Result) -> None:
        assert self._current is not None
        self._current.append(byte)
        if byte == _END:
            if self.with_lrc and bytes(self._current[1:]) != _FAILED_BODY:
                self._lrc_pending = True  # readers send no LRC after E? either way; see parse_track
            else:
                self._finish_track(out)
        elif len(self._current) > TRACK_BYTES_MAX:
            self._cut_track(out, f"is too long (over {TRACK_BYTES_MAX} characters)")

    def flush(self) -> Result:
        """The reader went quiet: whatever was received is the whole swipe."""
        out = Result()
        if self._current is not None or self._seen or self._tracks or self._emitted or self._skipping:
            self._end_swipe(out)
        return out

    def reset(self) -> Result:
        """The port was reopened: a swipe in progress is lost, not completed."""
        out = Result()
        if self._current is not None:
            self._cut_track(out, "was cut off: a half frame")
        elif self._tracks and not self._emitted:
            self._bad(out, FrameError("a swipe was cut off when the port closed"), "half")
        self._tracks, self._emitted = [], True  # nothing of the old swipe goes out
        self._end_swipe(out)
        return out


class Msr605Decoder(_Decoder):
    """Answers of the MSR206/MSR605/MSR606 family to an ISO read (`ESC r`)."""

    MARK = MSR_MARK

    def __init__(self, member_track: int = 2) -> None:
        self.member_track = member_track
        self.counters = Counters()
        self._buf = bytearray()  # at most 2 * FRAME_BYTES_MAX: feed works in slices

    def feed(self, data: bytes) -> Result:
        out = Result()
        for i in range(0, len(data), FRAME_BYTES_MAX):
            self._buf += data[i:i + FRAME_BYTES_MAX]
            self._scan(out)
        return out

    def _drop(self, n: int) -> None:
        self.counters.dropped_bytes += n
        del self._buf[:n]

    def _between(self, out: Result, n: int) -> None:
        """The first `n` bytes are outside any answer: test answers (`ESC y`), else noise."""
        tests = self._buf.count(MSR_TEST_OK, 0, n)
        out.test_answers += tests
        out.noise += n - len(MSR_TEST_OK) * tests
        self.counters.dropped_bytes += n - len(MSR_TEST_OK) * tests
        del self._buf[:n]

    def _scan(self, out: Result) -> None:
        buf = self._buf
        while True:
            start = buf.find(MSR_ANSWER)
            if start < 0:  # keep a last ESC: it may begin ESC s or ESC y
                self._between(out, len(buf) - (1 if buf.endswith(b"\x1b") else 0))
                return
            if start:
                self._between(out, start)
            end = buf.find(self.MARK, len(MSR_ANSWER))
            again = buf.find(MSR_ANSWER, len(MSR_ANSWER))  # 's' is in no track's set: a new answer
            if again >= 0 and (end < 0 or again < end):
                self._drop(again)
                self._bad(out, FrameError("the reader's answer was cut off: a half frame"), "half")
                continue
            if end < 0 or end + len(self.MARK) >= len(buf):
                if len(buf) > FRAME_BYTES_MAX:
                    self._drop(len(buf))
                    self._bad(out, FrameError(f"an answer longer than {FRAME_BYTES_MAX} bytes was dropped"),
                              "overlong")
                return  # wait for the rest of the answer
            status = buf[end + len(self.MARK)]
            block = bytes(buf[len(MSR_ANSWER):end])  # the tracks; the mark's '?' is not part of them
            del buf[: end + len(self.MARK) + 1]
            try:
                swipe = self._decode(block, status, out)
            except FrameError as exc:
                self._bad(out, exc, "track")
                continue
            self.counters.swipes += 1
            out.swipes.append(swipe)

    def _split(self, block: bytes) -> list[tuple[int, bytes]]:
        """The block's `ESC n data` parts, in order."""
        parts: list[tuple[int, bytes]] = []
        i = 0
        while i < len(block):
            if block[i] != ESC or i + 1 >= len(block) or block[i + 1] not in (1, 2, 3):
                raise FrameError("the reader's answer is not in the ESC 1/2/3 track format")
            number, j = block[i + 1], i + 2
            k = j
            while k < len(block) and not (block[k] == ESC and k + 1 < len(block) and block[k + 1] in (1, 2, 3)):
                k += 1
            if any(n == number for n, _ in parts):
                raise FrameError(f"the reader's answer has track {number} twice")
            parts.append((number, block[j:k]))
            i = k
        return parts

    def _decode(self, block: bytes, status: int, out: Result) -> Swipe:
        if status not in MSR_STATUS:
            raise FrameError(f"the reader answered with an unknown status byte 0x{status:02x}")
        problem = MSR_STATUS[status]
        if problem:
            raise FrameError(problem)
        parts = self._split(block)
        tracks: list[Track] = []
        for index, (number, content) in enumerate(parts):
            if content in (b"", MSR_EMPTY_TRACK):
                continue
            if content == MSR_FAILED_TRACK:
                tracks.append(Track(number, None, failed=True))
                continue
            if index == len(parts) - 1 and not content.endswith(b"?"):
                content += b"?"  # some firmware lets the mark's '?' close the last track too
            try:
                tracks.append(parse_track(number, content.decode("ascii")))
            except (UnicodeDecodeError, FrameError) as exc:
                error = exc if isinstance(exc, FrameError) else FrameError(f"track {number}: bytes that are not ASCII")
                self._bad(out, error, "track", report=False)  # the other tracks may still carry the number
                tracks.append(Track(number, None, failed=True))
        if not tracks:
            raise FrameError("the swipe carried no track data; swipe the card again")
        return Swipe(tuple(tracks))

    def flush(self) -> Result:
        """The reader went quiet: an answer still open was cut off."""
        out = Result()
        if self._buf.startswith(MSR_ANSWER):
            self._bad(out, FrameError("the reader's answer was cut off: a half frame"), "half")
            self._drop(len(self._buf))
        elif self._buf:
            self._between(out, len(self._buf))  # a lone ESC that began nothing
        return out

    def reset(self) -> Result:
        """The port was reopened: drop what the old connection left."""
        return self.flush()
