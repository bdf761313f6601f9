"""A fast path in front of wsproto for the one frame WEEX sends almost every time.

Nearly every frame from the server is a final, unmasked text frame without extension bits
(first byte 0x81). wsproto parses each through several layers of pure Python, which costs more
than everything else the client does with the message. `FastFrameReader` decodes such frames
straight from the received bytes and gives every other frame (control frames, binary and
fragmented messages, anything malformed) to wsproto, so wsproto still decides everything that is
not the common case, with its own state exactly as if it had seen all the bytes:

* wsproto gets whole frames, from a frame boundary on, in the very pieces they arrived in, so
  even its incremental UTF-8 checks and its error messages come out the same;
* a frame is read here only at a boundary, outside a fragmented message, when all of it has
  arrived and it is within the size limit; one that is still arriving goes to wsproto as it
  arrives (so a large frame is never held back waiting for its end);
* the first header wsproto would refuse turns the fast path off for good: from then on wsproto
  sees everything (and closes the connection, as it would have anyway).

Text is checked strictly as UTF-8; a frame that is not becomes `InvalidText`, whose reason is
the one wsproto gives, and the connection closes with 1007 just as it does without this path
(nothing after that frame is read, as wsproto reads nothing after a frame it refuses).
"""

from __future__ import annotations

import codecs

import attrs
import wsproto

FAST_FIRST_BYTE = 0x81  # FIN, no RSV bits, opcode TEXT
_DATA_OPCODES = (0x1, 0x2)
_CONTROL_OPCODES = (0x8, 0x9, 0xA)
_CONTINUATION = 0x0


@attrs.frozen
class InvalidText:
    """A complete text frame that is not UTF-8: close with 1007 and this reason, like wsproto."""

    reason: str


Piece = str | bytes | InvalidText
"""What `feed` yields, in wire order: a whole text message (str), bytes for wsproto, or
`InvalidText`."""


@attrs.frozen
class _Header:
    size: int  # header bytes, including the extended length
    payload: int
    opcode: int
    fin: bool


def _read_header(data: bytes, pos: int, end: int) -> _Header | bool | None:
    """The frame header at `pos`: a `_Header`, None if more bytes are needed, or False if
    wsproto would refuse it (bad opcode, RSV bits, a mask, a non-minimal length, ...)."""
    if end - pos < 2:
        return None
    first, second = data[pos], data[pos + 1]
    opcode, fin = first & 0x0F, bool(first & 0x80)
    if first & 0x70 or second & 0x80:
        return False  # extension bits without extensions, or a masked server frame
    length = second & 0x7F
    if opcode in _CONTROL_OPCODES:
        if not fin or length > 125:
            return False
    elif opcode not in _DATA_OPCODES and opcode != _CONTINUATION:
        return False
    if length == 126:
        if end - pos < 4:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        return _Header(4, length, opcode, fin) if length > 125 else False
    if length == 127:
        if end - pos < 10:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        return _Header(10, length, opcode, fin) if 0xFFFF < length < 1 << 63 else False
    return _Header(2, length, opcode, fin)


class _CutText:
    """A plain text frame cut by a read boundary, decoded piece by piece as it arrives.

    Its payload goes through an incremental UTF-8 decoder in the very chunks wsproto's own
    decoder would see, so a bad byte is refused at the same read, with the same reason."""

    __slots__ = ("decoder", "owed", "parts")

    def __init__(self, owed: int) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.parts: list[str] = []
        self.owed = owed  # payload bytes still to come


class FastFrameReader:
    """Splits the bytes after the handshake between the fast path and wsproto.

    Create it only when wsproto stands between two frames (see `wsproto_between_frames`).
    """

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.disabled = False
        """True once a frame wsproto will refuse was seen: everything goes to wsproto."""
        self._held = b""  # the start of a fast-path candidate's header, too short to judge
        self._passed_header = b""  # header bytes already given to wsproto, frame size unknown
        self._owed = 0  # bytes of the current frame still to give to wsproto
        self._cut: _CutText | None = None  # a plain text frame still arriving
        self._in_message = False  # wsproto is inside a fragmented data message

    def feed(self, data: bytes) -> list[Piece]:
        """What to do with `data`, piece by piece in wire order."""
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview from some transports
        if self.disabled:
            return [data]
        if self._held:
            data, self._held = self._held + data, b""
        pieces: list[Piece] = []
        append = pieces.append
        pos, end = 0, len(data)
        limit = self.max_payload
        run = -1  # where the bytes for wsproto not yet handed over start (-1: none)
        while pos < end:
            if self._owed:  # consecutive frames for wsproto go to it in one piece
                take = min(self._owed, end - pos)
                self._owed -= take
                if run < 0:
                    run = pos
                pos += take
                continue
            if run >= 0 and (self._cut is not None or data[pos] == FAST_FIRST_BYTE):
                append(data[run:pos])
                run = -1
            if self._cut is not None:
                pos = self._continue_cut(self._cut, data, pos, end, pieces)
                if self.disabled:
                    return pieces
                continue
            if data[pos] == FAST_FIRST_BYTE and not self._in_message and not self._passed_header:
                # Whole plain text frames, one after another: the loop nearly every byte takes.
                while True:
                    length = data[pos + 1] if pos + 1 < end else 0xFF
                    if length < 126:
                        start = pos + 2
                    elif length == 126 and pos + 4 <= end:
                        length = data[pos + 2] << 8 | data[pos + 3]
                        if length < 126:
                            break  # not minimal: wsproto refuses it (`_read_header` below)
                        start = pos + 4
                    else:
                        break
                    stop = start + length
                    if stop > end or length > limit:
                        break
                    try:
                        append(data[start:stop].decode())
                    except UnicodeDecodeError as exc:
                        self.disabled = True
                        append(InvalidText(str(exc)))
                        return pieces
                    pos = stop
                    if pos == end or data[pos] != FAST_FIRST_BYTE:
                        break
                if pos == end or data[pos] != FAST_FIRST_BYTE:
                    continue
                header = _read_header(data, pos, end)
                if header is None:
                    self._held = bytes(data[pos:])
                    return pieces
                if header is False:
                    self.disabled = True
                    append(data[pos:])
                    return pieces
                assert isinstance(header, _Header)
                if header.payload > limit:
                    self._owed = header.size + header.payload  # wsproto refuses it by its header
                    continue
                # Cut by the end of this read: decode what is here, hold it for the rest.
                self._cut = _CutText(header.payload)
                pos = self._continue_cut(self._cut, data, pos + header.size, end, pieces)
                if self.disabled:
                    return pieces
                continue
            # A frame for wsproto: its bytes go on as they come; its header says how many.
            if run < 0:
                run = pos
            prefix = self._passed_header
            if prefix:
                window = prefix + data[pos : pos + 10]
                header = _read_header(window, 0, len(window))
            else:
                header = _read_header(data, pos, end)
            if header is False or (isinstance(header, _Header) and not self._in_step(header)):
                self.disabled = True
                append(data[run:])
                return pieces
            if header is None:
                self._passed_header = prefix + data[pos:]
                append(data[run:])
                return pieces
            assert isinstance(header, _Header)
            self._passed_header = b""
            self._owed = header.size + header.payload - len(prefix)
        if run >= 0:
            append(data[run:pos])
        return pieces

    def _continue_cut(
        self, cut: _CutText, data: bytes, pos: int, end: int, pieces: list[Piece]
    ) -> int:
        """Take the cut frame's payload bytes from `data[pos:]`; the text once it is whole.
        Returns where the next frame starts (or `end`)."""
        take = min(cut.owed, end - pos)
        cut.owed -= take
        finished = not cut.owed
        try:
            cut.parts.append(cut.decoder.decode(data[pos : pos + take], finished))
        except UnicodeDecodeError as exc:
            self.disabled = True
            pieces.append(InvalidText(str(exc)))
            self._cut = None
            return end
        if finished:
            pieces.append("".join(cut.parts))
            self._cut = None
        return pos + take

    def _in_step(self, header: _Header) -> bool:
        """Follow fragmented messages; False for a frame out of sequence (wsproto refuses it)."""
        opcode = header.opcode
        if opcode == _CONTINUATION:
            if not self._in_message:
                return False
            self._in_message = not header.fin
        elif opcode in _DATA_OPCODES:
            if self._in_message:
                return False
            self._in_message = not header.fin
        return True


def wsproto_between_frames(ws: wsproto.WSConnection) -> bool:
    """Whether wsproto holds no part of a frame or fragmented message, so that the next byte
    received starts a frame. Asked after the handshake, until it holds: the 101 response may
    arrive together with the start of a frame. It reads wsproto internals that have been stable
    for years; if they ever change, this answers False and the connection stays on wsproto."""
    connection = ws.connection
    if connection is None:
        return False
    try:
        proto = connection._proto
        frames = proto._frame_decoder
        return (
            frames.header is None
            and len(frames.buffer) == 0
            and proto._message_decoder.opcode is None
        )
    except AttributeError:
        return False


def wsproto_pending_payload(ws: wsproto.WSConnection) -> int:
    """Payload bytes still to come of the data frame whose header wsproto has read (0 if it
    is between frames or in a control frame), so a size limit can refuse a message by its
    header. Reads the same wsproto internals as `wsproto_between_frames`; 0 if they change."""
    connection = ws.connection
    if connection is None:
        return 0
    try:
        frames = connection._proto._frame_decoder
        header = frames.header
        if header is None or header.opcode.iscontrol():
            return 0
        pending: int = header.payload_len - frames.payload_consumed
    except AttributeError:
        return 0
    return pending
