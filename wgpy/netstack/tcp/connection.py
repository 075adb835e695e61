"""``TcpConnection``: one connection's state machine, RFC 9293 3.10, with RFC 5961's defences.

Sans-IO, as the rest of the stack: ``receive(segment, now)`` and the user calls change the state;
``segments_to_send(now)`` says what to transmit; ``next_deadline()``/``handle_timer(now)`` run the timers.
A segment the state refuses is returned as a :class:`NetDrop`; nothing raises on input.

Sequence numbers are kept unwrapped: plain ints that start at the ISS (or IRS) and grow past 2^32, so the
comparisons of RFC 9293 3.4 are plain ``<``. A number from the wire is unwrapped to the value nearest a
reference (RCV.NXT for SEG.SEQ, SND.UNA for SEG.ACK); one on the wire is the low 32 bits.

One timer does retransmission (RFC 6298) and, while the peer's window is zero, persistence (RFC 9293
3.8.6.1): when it expires, sending goes back to SND.UNA (go-back-N, as Linux after a timeout), with one
octet allowed beyond a zero window as the probe. SACK (RFC 2018): as a receiver we send SACK blocks in
pure ACKs, so a Linux sender recovers several losses per window in one round trip instead of one per RTT
(without them, 2 % loss put Linux in RTO backoff for seconds); as a sender we keep a scoreboard of the
peer's blocks and, in NewReno's fast recovery, retransmit each hole they show once (sack.py), instead of
one hole per round trip. Timestamps (RFC 7323) are offered and, when the peer offers them too, carried
on every segment but RSTs: RTT samples from each TSecr (4.1), TS.Recent and Last.ACK.sent (4.3), PAWS
(5.3); the segments we send then carry 12 bytes less data (as Linux). Urgent
data: the pointer is ignored and the data delivered in line (RFC 9293 3.8.5's advice to applications).
"""

from __future__ import annotations

from ..errors import NetDrop
from .buffers import ReceiveBuffer, SendBuffer
from .config import TcpConfig, TcpState
from .congestion import NewReno
from .rtt import RttEstimator
from .output import TcpOutput
from .sack import Scoreboard
from .segment import ACK, FIN, PSH, RST, SYN, Segment

MASK = 0xFFFFFFFF
# RFC 9293 3.7.1: the MSS assumed when the SYN carries none (IPv4 576 - 40; IPv6 RFC 8200 5: 1280 - 60).
DEFAULT_MSS_IPV4 = 536
DEFAULT_MSS_IPV6 = 1220

CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED = TcpState.CLOSED, TcpState.LISTEN, TcpState.SYN_SENT, TcpState.SYN_RECEIVED
ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2 = TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2
CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT = TcpState.CLOSE_WAIT, TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT

MAX_DUPLICATE_ACKS_PER_CALL = 64  # a bound on the pure ACKs one segments_to_send call owes
RECEIVING = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})  # states whose segment text is delivered
SENDING = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})  # data or FIN may leave

# RFC 7323 5.5: TS.Recent older than 24 days is no longer valid, so PAWS does not refuse an idle
# connection's next segment (a 1 ms clock's sign bit flips after 24.8 days).
PAWS_IDLE = 24 * 86400.0
HALF = 0x80000000

REFUSED, RESET, TIMED_OUT, ABORTED = "connection refused", "connection reset", "timed out", "connection aborted"


def unwrap(wire: int, near: int) -> int:
    """The unwrapped sequence number whose low 32 bits are ``wire``, nearest to ``near``."""
    d = (wire - near) & MASK
    return near + d - 0x100000000 if d & 0x80000000 else near + d


class TcpConnection(TcpOutput):
    """One TCP connection. ``local`` and ``remote`` are ``(address_bytes, port)``."""

    __slots__ = ("local", "remote", "config", "state", "error", "passive", "iss", "irs",
                 "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_snd_wnd", "snd_wscale",
                 "rcv_nxt", "rcv_adv", "rcv_wscale", "rcv_mss", "mss", "mss_offered",
                 "send_buffer", "receive_buffer", "rtt", "congestion",
                 "fin_seq", "fin_received", "rcv_fin_seq", "orphaned", "write_shut",
                 "ack_pending", "unacked_bytes", "delack_deadline", "rtx_deadline", "retransmissions",
                 "first_timeout", "heard", "probe_due", "retransmit_now", "time_wait_deadline",
                 "fin_wait_2_deadline", "control", "challenge_second", "challenge_count", "now",
                 "duplicate_acks_owed", "sack_ok", "last_out_of_order", "scoreboard", "syn_timed_out",
                 "ts_ok", "ts_offset", "ts_recent", "ts_recent_age", "ts_echo", "last_ack_sent")

    def __init__(self, local: tuple[bytes, int], remote: tuple[bytes, int], iss: int, mss: int,
                 config: TcpConfig, state: TcpState, ts_offset: int = 0) -> None:
        if not 0 <= iss <= MASK:
            raise ValueError("the ISS is a 32-bit number")
        self.local, self.remote, self.config, self.state = local, remote, config, state
        self.error: str | None = None
        self.passive = state is not SYN_SENT
        self.iss = iss
        self.irs = 0
        self.snd_una = self.snd_nxt = self.snd_max = iss  # SND.MAX: one past the highest sent
        self.snd_wnd = self.snd_wl1 = self.max_snd_wnd = self.snd_wscale = 0
        self.snd_wl2 = iss
        self.rcv_nxt = self.rcv_adv = self.rcv_wscale = 0
        self.mss_offered = mss
        self.mss = DEFAULT_MSS_IPV4 if len(remote[0]) == 4 else DEFAULT_MSS_IPV6
        self.rcv_mss = min(self.mss, mss)  # the largest segment seen, for "every second full segment"
        self.send_buffer = SendBuffer(config.send_buffer, iss + 1)
        self.receive_buffer = ReceiveBuffer(config.receive_buffer, config.out_of_order_limit)
        self.rtt = RttEstimator(config.initial_rto, config.min_rto, config.max_rto)
        self.congestion = NewReno(self.mss, iss)
        self.fin_seq: int | None = None  # our FIN's sequence number, once shutdown_write fixed it
        self.fin_received = False
        self.rcv_fin_seq: int | None = None  # a FIN that arrived beyond a gap
        self.orphaned = self.write_shut = False
        self.ack_pending = False
        self.duplicate_acks_owed = 0  # one pure ACK per out-of-order segment, even from one batch
        self.unacked_bytes = 0
        self.delack_deadline: float | None = None
        self.rtx_deadline: float | None = None
        self.retransmissions = 0
        self.first_timeout: float | None = None
        self.heard = False  # an acceptable ACK arrived since the timer last expired
        self.probe_due = False
        self.retransmit_now = False
        self.time_wait_deadline: float | None = None
        self.fin_wait_2_deadline: float | None = None
        self.control: list[Segment] = []  # RSTs and challenge ACKs, sent first
        self.challenge_second = -1
        self.challenge_count = 0
        self.now = 0.0  # the latest ``now`` given, for calls that take none (close)
        self.sack_ok = False  # the peer's SYN allowed SACK blocks (RFC 2018 2)
        self.last_out_of_order = 0  # where the latest segment beyond a gap began: the first SACK block
        self.scoreboard = Scoreboard()  # what the peer's SACK blocks say it holds beyond SND.UNA
        self.syn_timed_out = False
        # RFC 7323: timestamps in use (both SYNs had them); our clock is ms of ``now`` plus ts_offset;
        # TS.Recent with the ``now`` it was taken at (5.5), the TSecr to time by, Last.ACK.sent (4.3).
        self.ts_ok = False
        self.ts_offset = ts_offset & MASK
        self.ts_recent = 0
        self.ts_recent_age = 0.0
        self.ts_echo: int | None = None
        self.last_ack_sent = 0

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, local, remote, iss: int, now: float, mss: int, config: TcpConfig = TcpConfig(),
             ts_offset: int = 0) -> TcpConnection:
        """Active open (RFC 9293 3.10.1): SYN-SENT; the SYN leaves with the next ``segments_to_send``.
        ``ts_offset``: where this connection's timestamp clock starts (RFC 7323 5.4: random per connection)."""
        return cls(local, remote, iss, mss, config, SYN_SENT, ts_offset)

    @classmethod
    def listen(cls, local, remote, iss: int, now: float, mss: int, config: TcpConfig = TcpConfig(),
               ts_offset: int = 0) -> TcpConnection:
        """A fully specified passive open (RFC 9293 3.10.1): LISTEN for a SYN from ``remote`` only.

        The stack's listeners take any remote and use :meth:`from_syn`; this is the RFC's other kind.
        """
        return cls(local, remote, iss, mss, config, LISTEN, ts_offset)

    @classmethod
    def from_syn(cls, local, remote, syn: Segment, iss: int, now: float, mss: int,
                 config: TcpConfig = TcpConfig(), ts_offset: int = 0) -> TcpConnection:
        """Passive open on ``syn`` (RFC 9293 3.10.7.2): SYN-RECEIVED; the SYN,ACK leaves next."""
        if syn.flags & (SYN | ACK | RST) != SYN:
            raise ValueError("from_syn needs a SYN without ACK or RST")
        connection = cls(local, remote, iss, mss, config, LISTEN, ts_offset)
        connection.receive(syn, now)
        return connection

    def _take_syn(self, segment: Segment, seq: int, now: float) -> None:
        """The peer's SYN: IRS, MSS (RFC 9293 3.7.1), window scaling (RFC 7323 2.2), timestamps (3.2)."""
        self.irs = seq
        self.rcv_nxt = self.last_ack_sent = seq + 1
        peer_mss = segment.mss if segment.mss else self.mss
        # Send no segment larger than the peer takes nor than our own link carries (MSS clamping).
        self.mss = max(min(peer_mss, self.mss_offered), 64)
        # RFC 7323 3.2: timestamps only when both SYNs carried them; then each segment's 12 option bytes
        # come out of its data (RFC 9293 3.7.1's effective send MSS; Linux's tcp_current_mss does it too).
        timestamps = segment.timestamps
        self.ts_ok = timestamps is not None and self.config.timestamps
        if self.ts_ok:
            self.ts_recent, self.ts_recent_age = timestamps[0], now
            self.mss = max(self.mss - 12, 64)
        self.rcv_mss = self.mss
        self.congestion.set_mss(self.mss)
        if segment.window_scale is not None:
            self.snd_wscale, self.rcv_wscale = segment.window_scale, self.config.window_scale
        else:  # RFC 7323 2.2: scaling only when both sides offered it
            self.snd_wscale = self.rcv_wscale = 0
        self.sack_ok = segment.sack_permitted
        self.snd_wnd = self.max_snd_wnd = segment.window  # never scaled in a SYN (RFC 7323 2.2)
        self.snd_wl1 = seq
        self.rcv_adv = self.rcv_nxt + min(self.receive_buffer.window, 0xFFFF << self.rcv_wscale)

    def reopens_with(self, segment: Segment) -> bool:
        """Whether a SYN to this connection in TIME-WAIT may open a new one (RFC 1122 4.2.2.13, RFC 6191):
        a bare SYN beyond RCV.NXT. The stack then forgets this connection and passes the SYN to
        ``from_syn`` with an ISN beyond ``snd_max`` (RFC 6528 ISNs, 4 us ticks, normally are)."""
        if self.state is not TIME_WAIT or segment.flags & (SYN | ACK | RST | FIN) != SYN:
            return False
        if unwrap(segment.seq, self.rcv_nxt) > self.rcv_nxt:
            return True
        # RFC 6191 2: or, when the old incarnation used timestamps, a TSval beyond its TS.Recent.
        return self.ts_ok and segment.timestamps is not None and 0 < (segment.timestamps[0] - self.ts_recent) & MASK < HALF

    # -- the user's calls (RFC 9293 3.10.2 - 3.10.6) ---------------------------------------------------

    @property
    def readable(self) -> int:
        return self.receive_buffer.readable

    @property
    def writable(self) -> int:
        if self.write_shut or self.state not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            return 0
        return self.send_buffer.free

    @property
    def at_eof(self) -> bool:
        """The peer's FIN has arrived and everything before it has been read."""
        return self.fin_received and not self.receive_buffer.readable

    def send(self, data: bytes) -> int:
        """Bytes taken into the send buffer (0 when it is full or the connection cannot send)."""
        if self.write_shut:
            raise ValueError("the connection is shut down for writing")
        if self.state not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            return 0
        return self.send_buffer.write(data)

    def recv(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` in order; b"" when nothing is buffered. Reading may open the window."""
        data = self.receive_buffer.read(max_bytes)
        if data and self.state in RECEIVING:
            # A window update when the window has grown enough to matter: twice what is still offered
            # and at least an MSS more (Linux's tcp_cleanup_rbuf; RFC 9293 3.8.6.2.2 for the MSS).
            offered = self.rcv_adv - self.rcv_nxt
            free = min(self.receive_buffer.window, 0xFFFF << self.rcv_wscale)
            if free >= 2 * offered and free - offered >= min(self.mss_offered, self.receive_buffer.capacity // 2):
                self.ack_pending = True
        return data

    def shutdown_write(self) -> None:
        """CLOSE for our direction (RFC 9293 3.10.4): a FIN after what is buffered (half-close)."""
        if self.write_shut:
            return
        state = self.state
        if state in (LISTEN, SYN_SENT):
            self._close(None)
            return
        if state not in (SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            return
        self.write_shut = True
        self.fin_seq = self.send_buffer.end
        if state is ESTABLISHED:
            self.state = FIN_WAIT_1
        elif state is CLOSE_WAIT:
            self.state = LAST_ACK
        # In SYN-RECEIVED the FIN waits for ESTABLISHED (RFC 9293 3.10.4).

    def close(self) -> None:
        """Shut down writing and forget the connection once both sides are closed.

        Unread data makes it an abort, as Linux does (RFC 2525 2.17): the peer learns its data was lost.
        """
        if self.receive_buffer.readable and self.state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, FIN_WAIT_2):
            self.abort()
            return
        self.orphaned = True
        self.shutdown_write()
        if self.state is FIN_WAIT_2 and self.fin_wait_2_deadline is None:
            self.fin_wait_2_deadline = self.now + self.config.fin_wait_2_timeout

    def abort(self) -> None:
        """ABORT (RFC 9293 3.10.5): RST now where the peer knows of us, then CLOSED."""
        if self.state in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            self.control.append(self._segment(self._ack_seq(), RST | ACK))
            self._close(ABORTED)
        else:
            self._close(None)

    # -- input (RFC 9293 3.10.7) ----------------------------------------------------------------------

    def receive(self, segment: Segment, now: float) -> NetDrop | None:
        """Process one segment (its checksum already checked by ``parse``); a refusal is returned named."""
        self.now = now
        state = self.state
        if state is ESTABLISHED:
            # The fast path ("header prediction", Van Jacobson's, as in every kernel): in-order data or an
            # ACK of new data, nothing else. What it takes, the full path would do the same way.
            if segment.flags & ~PSH == ACK and self.snd_wnd and self.rcv_fin_seq is None:
                payload = segment.payload
                size = len(payload)
                rcv_nxt = self.rcv_nxt
                snd_una = self.snd_una
                ack = snd_una + ((segment.ack - snd_una) & MASK)
                buffer = self.receive_buffer
                timestamps = segment.timestamps if self.ts_ok else None
                if (segment.seq == rcv_nxt & MASK and ack <= self.snd_max and (size or ack > snd_una)
                        and size <= buffer.window and not buffer.has_out_of_order and not segment.sack_blocks
                        and (timestamps is None or (timestamps[0] - self.ts_recent) & MASK < HALF)):
                    if timestamps is not None:  # RFC 7323 4.3: TS.Recent when SEG.SEQ <= Last.ACK.sent
                        if self.last_ack_sent >= rcv_nxt:
                            self.ts_recent, self.ts_recent_age = timestamps[0], now
                        self.ts_echo = timestamps[1]
                    if ack > snd_una:
                        self._acknowledge(ack, now)
                    self.snd_wnd = window = segment.window << self.snd_wscale
                    if window > self.max_snd_wnd:
                        self.max_snd_wnd = window
                    self.snd_wl1, self.snd_wl2 = rcv_nxt, ack
                    self.heard = True
                    if size:
                        buffer.append(payload)
                        self.rcv_nxt = rcv_nxt + size
                        if size > self.rcv_mss:
                            self.rcv_mss = min(size, self.mss_offered)
                        self.unacked_bytes += size
                        if self.unacked_bytes >= 2 * self.rcv_mss:
                            self.ack_pending = True
                        elif self.delack_deadline is None:
                            self.delack_deadline = now + self.config.delayed_ack
                    return None
            return self._receive_synchronized(segment, now)
        if state is CLOSED:
            return NetDrop.UNEXPECTED_SEGMENT
        if state is LISTEN:
            return self._receive_listen(segment, now)
        if state is SYN_SENT:
            return self._receive_syn_sent(segment, now)
        return self._receive_synchronized(segment, now)

    def _receive_listen(self, segment: Segment, now: float) -> NetDrop | None:
        """RFC 9293 3.10.7.2."""
        flags = segment.flags
        if flags & RST:
            return NetDrop.UNEXPECTED_SEGMENT
        if flags & ACK:
            self.control.append(self._segment_raw(segment.ack, 0, RST))
            return NetDrop.UNEXPECTED_SEGMENT
        if not flags & SYN:
            return NetDrop.UNEXPECTED_SEGMENT
        self._take_syn(segment, segment.seq, now)
        self.state = SYN_RECEIVED  # the SYN,ACK goes out with segments_to_send (SND.NXT is still ISS)
        return None

    def _receive_syn_sent(self, segment: Segment, now: float) -> NetDrop | None:
        """RFC 9293 3.10.7.3, with RFC 5961 3.2's exact-ACK rule for RST."""
        flags = segment.flags
        ack = None
        if flags & ACK:
            ack = unwrap(segment.ack, self.snd_una)
            if ack <= self.iss or ack > self.snd_max:
                if not flags & RST:
                    self.control.append(self._segment_raw(segment.ack, 0, RST))
                return NetDrop.BAD_ACK
        if flags & RST:
            if ack is None:
                return NetDrop.RST_OUT_OF_WINDOW
            self._close(REFUSED)
            return None
        if not flags & SYN:
            return NetDrop.UNEXPECTED_SEGMENT
        self._take_syn(segment, segment.seq, now)
        if ack is not None and ack > self.iss:
            if self.ts_ok:
                self.ts_echo = segment.timestamps[1]
            self._acknowledge(ack, now)
            self.snd_wl2 = ack
            self._establish(now)
            self.ack_pending = True
        else:  # simultaneous open: SYN-RECEIVED, our SYN again with an ACK (RFC 9293 3.10.7.3)
            self.state = SYN_RECEIVED
            self.snd_nxt = self.iss  # so the SYN,ACK leaves (ISS unchanged)
        return None

    def _establish(self, now: float) -> None:
        self.state = ESTABLISHED
        self.retransmissions = 0
        self.first_timeout = None
        if self.syn_timed_out and self.rtt.srtt is None:
            # RFC 6298 5.7: a SYN timed out and no RTT is known: data starts with a 3 s RTO (Linux's
            # TCP_TIMEOUT_FALLBACK), not with the backed-off handshake timer.
            self.rtt.rto = min(3.0, self.config.max_rto)
            self.rtt.backoff = 0
        if self.write_shut:  # a shutdown_write while in SYN-RECEIVED
            self.state = FIN_WAIT_1

    def _receive_synchronized(self, segment: Segment, now: float) -> NetDrop | None:
        """RFC 9293 3.10.7.4 for SYN-RECEIVED and every later state."""
        state = self.state
        flags = segment.flags
        rcv_nxt = self.rcv_nxt
        seq = unwrap(segment.seq, rcv_nxt)
        payload = segment.payload
        size = len(payload)
        seg_len = size + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        window = self.receive_buffer.window
        drop = None
        if state is SYN_RECEIVED and flags & SYN and seq == self.irs and not flags & RST:
            return self._syn_again(segment, now)
        timestamps = segment.timestamps if self.ts_ok else None
        self.ts_echo = None
        if timestamps is not None:
            # RFC 7323 5.3 R1, PAWS: a TSval older than TS.Recent is an old duplicate (RSTs excepted),
            # unless TS.Recent is over 24 days old (5.5), when it is no longer a valid reference.
            if (timestamps[0] - self.ts_recent) & MASK >= HALF and not flags & RST:
                if now - self.ts_recent_age <= PAWS_IDLE:
                    self.ack_pending = True
                    return NetDrop.PAWS_REJECTED
                self.ts_recent, self.ts_recent_age = timestamps[0], now
            self.ts_echo = timestamps[1]

        # First, check the sequence number (the table of 3.10.7.4).
        if seg_len == 0:
            acceptable = seq == rcv_nxt if window == 0 else rcv_nxt <= seq < rcv_nxt + window
        elif window == 0:
            # Zero window: the segment's ACK still counts (3.10.7.4, "special allowance"), its data not.
            acceptable = seq == rcv_nxt
            if acceptable and size:
                payload, size, drop = b"", 0, NetDrop.WINDOW_FULL
                self.ack_pending = True
        else:
            acceptable = (rcv_nxt <= seq < rcv_nxt + window) or (rcv_nxt <= seq + seg_len - 1 < rcv_nxt + window)
        if not acceptable:
            if flags & RST:
                return NetDrop.RST_OUT_OF_WINDOW
            self.ack_pending = True  # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            if state is TIME_WAIT and flags & FIN:  # a retransmitted FIN: restart the 2 MSL timeout
                self.time_wait_deadline = now + 2 * self.config.msl
            return NetDrop.UNACCEPTABLE_SEGMENT
        # RFC 7323 4.3 (5.3 R3): an acceptable segment's TSval becomes TS.Recent if it does not start beyond
        # what we last acknowledged (so with delayed ACKs the earliest unacknowledged one is echoed).
        if timestamps is not None and seq <= self.last_ack_sent and (timestamps[0] - self.ts_recent) & MASK < HALF:
            self.ts_recent, self.ts_recent_age = timestamps[0], now

        # Second, the RST bit (RFC 5961 3.2: only an exact RCV.NXT resets; in-window ones are challenged).
        if flags & RST:
            if seq != rcv_nxt:
                self._challenge_ack(now)
                return NetDrop.CHALLENGE_ACK
            if state is SYN_RECEIVED:
                self._close(RESET if self.passive else REFUSED)
            elif state in (CLOSING, LAST_ACK, TIME_WAIT):
                self._close(None)
            else:
                self._close(RESET)
            return None

        # Fourth, the SYN bit (RFC 5961 4.2: a SYN in a synchronized state is answered by a challenge ACK).
        if flags & SYN:
            self._challenge_ack(now)
            return NetDrop.CHALLENGE_ACK

        # Fifth, the ACK field.
        if not flags & ACK:
            return NetDrop.UNEXPECTED_SEGMENT
        ack = unwrap(segment.ack, self.snd_una)
        if state is SYN_RECEIVED:
            if not self.snd_una < ack <= self.snd_max:
                self.control.append(self._segment_raw(segment.ack, 0, RST))
                return NetDrop.BAD_ACK
            self._acknowledge(ack, now)
            self.snd_wnd = segment.window << self.snd_wscale
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self.snd_wl1, self.snd_wl2 = seq, ack
            self._establish(now)
            state = self.state
        else:
            snd_una = self.snd_una
            if ack > self.snd_max:  # acknowledges something not yet sent: ACK and drop
                self.ack_pending = True
                return NetDrop.BAD_ACK
            if ack < snd_una - max(self.max_snd_wnd, 1):  # RFC 5961 5.2
                self._challenge_ack(now)
                return NetDrop.OLD_ACK
            window_field = segment.window << self.snd_wscale
            news = self._take_sack_blocks(segment.sack_blocks, ack) if segment.sack_blocks else False
            if ack > snd_una:
                self._acknowledge(ack, now)
            elif (ack == snd_una and seg_len == 0 and self.snd_max > snd_una and window_field
                  and (window_field == self.snd_wnd or news) and state in SENDING):
                # A duplicate ACK (RFC 5681 2); with SACK, one that SACKs something new (RFC 6675 2),
                # whatever its window: Linux's grows while it receives. It counts towards fast
                # retransmit (3.2); in recovery, news of a hole retransmits it.
                congestion = self.congestion
                if congestion.on_duplicate_ack(self.snd_max - snd_una, self.snd_max, snd_una):
                    self.retransmit_now = True
                    self.scoreboard.rexmit_next = snd_una
                    self.rtt.on_retransmit()
                elif news and congestion.in_recovery:
                    self.retransmit_now = True
            # SND.WND from the newest segment (SND.WL1, SND.WL2 of 3.10.7.4).
            if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
                if not self.snd_wnd and window_field and self.snd_max > self.snd_una:
                    # The window opens after probes: resend from SND.UNA at once, the backoff forgotten.
                    self.snd_nxt = self.snd_una
                    self.rtt.backoff = 0
                    self.rtx_deadline = None
                self.snd_wnd = window_field
                self.snd_wl1, self.snd_wl2 = seq, ack
                if window_field > self.max_snd_wnd:
                    self.max_snd_wnd = window_field
            self.heard = True
        fin_acked = self.fin_seq is not None and self.snd_una > self.fin_seq
        if fin_acked:
            if state is FIN_WAIT_1:
                state = self.state = FIN_WAIT_2
                if self.orphaned:
                    self.fin_wait_2_deadline = now + self.config.fin_wait_2_timeout
            elif state is CLOSING:
                self._enter_time_wait(now)
                return drop
            elif state is LAST_ACK:
                self._close(None)
                return drop

        # Seventh, the segment text.
        if size and state in RECEIVING:
            if self.orphaned:  # closed by the user: nobody will read it (Linux answers with RST)
                self.control.append(self._segment(self._ack_seq(), RST | ACK))
                self._close(RESET)
                return NetDrop.UNEXPECTED_SEGMENT
            drop = self._receive_text(seq, payload, now) or drop

        # Eighth, the FIN bit: processed when everything before it has arrived.
        if state in RECEIVING and not self.fin_received:
            if flags & FIN and self.rcv_fin_seq is None:
                self.rcv_fin_seq = seq + len(segment.payload)
            if self.rcv_fin_seq is not None:
                if self.rcv_fin_seq == self.rcv_nxt:
                    self._receive_fin(now)
                elif flags & FIN:
                    self.ack_pending = True
        return drop

    def _syn_again(self, segment: Segment, now: float) -> NetDrop | None:
        """The peer's SYN again in SYN-RECEIVED: its SYN,ACK in a simultaneous open completes the
        handshake (RFC 9293 figure 8; the 3.10.7.4 table would refuse it and loop SYN,ACKs); a bare SYN
        is a retransmission, answered by our SYN,ACK again."""
        self.ack_pending = True
        if segment.flags & ACK:
            ack = unwrap(segment.ack, self.snd_una)
            if self.snd_una < ack <= self.snd_max:
                self._acknowledge(ack, now)
                self.snd_wl1, self.snd_wl2 = self.irs, ack
                self._establish(now)
                return None
            return NetDrop.BAD_ACK
        return NetDrop.UNACCEPTABLE_SEGMENT

    def _receive_text(self, seq: int, payload, now: float) -> NetDrop | None:
        """Step seven: in-order text to the buffer, later text kept beyond the gap (3.10.7.4)."""
        rcv_nxt = self.rcv_nxt
        buffer = self.receive_buffer
        right = rcv_nxt + buffer.window
        drop = None
        if seq < rcv_nxt:
            payload = payload[rcv_nxt - seq:]
            seq = rcv_nxt
        if seq + len(payload) > right:
            payload = payload[:right - seq]
            drop = NetDrop.WINDOW_FULL
        size = len(payload)
        if not size:
            self.ack_pending = True
            return drop
        if seq == rcv_nxt:
            buffer.append(payload)
            rcv_nxt += size
            if buffer.has_out_of_order:
                rcv_nxt = buffer.take_in_order(rcv_nxt, right)
                self.ack_pending = True  # RFC 5681 4.2: ACK at once when a gap fills
            self.rcv_nxt = rcv_nxt
            if size > self.rcv_mss:
                self.rcv_mss = min(size, self.mss_offered)
            # Delayed ACK (RFC 5681 4.2, RFC 9293 3.8.6.3): at least every second full-sized segment.
            self.unacked_bytes += size
            if self.unacked_bytes >= 2 * self.rcv_mss:
                self.ack_pending = True
            elif self.delack_deadline is None:
                self.delack_deadline = now + self.config.delayed_ack
            return drop
        # Beyond a gap: kept, and a duplicate ACK at once (RFC 5681 4.2) tells the sender. One for each
        # such segment, even when a batch brings several: the sender counts them (RFC 5681 3.2).
        if self.duplicate_acks_owed < MAX_DUPLICATE_ACKS_PER_CALL:
            self.duplicate_acks_owed += 1
        self.last_out_of_order = seq
        if not buffer.insert(seq, payload):
            return NetDrop.OUT_OF_ORDER_FULL
        return drop

    def _receive_fin(self, now: float) -> None:
        """Step eight: the FIN at RCV.NXT."""
        self.fin_received = True
        self.rcv_nxt += 1
        self.ack_pending = True
        state = self.state
        if state is ESTABLISHED:
            self.state = CLOSE_WAIT
        elif state is FIN_WAIT_1:  # our FIN not yet acknowledged: simultaneous close
            self.state = CLOSING
        elif state is FIN_WAIT_2:
            self._enter_time_wait(now)

    def _take_sack_blocks(self, blocks: tuple, ack: int) -> bool:
        """The peer's SACK blocks into the scoreboard; ``True`` if they SACK something new."""
        if not self.sack_ok:
            return False
        news = False
        low, high = max(ack, self.snd_una), self.snd_max
        for left, right in blocks:
            left, right = unwrap(left, low), unwrap(right, low)
            if low < right <= high and left < right:  # RFC 2018 4: blocks beyond SND.UNA, within what was sent
                news |= self.scoreboard.add(max(left, low), right)
        return news

    def _acknowledge(self, ack: int, now: float) -> None:
        """SND.UNA < ack <= SND.MAX: release what is acknowledged, time, open cwnd, rearm the timer."""
        acked = ack - self.snd_una
        synchronized = self.state not in (SYN_SENT, SYN_RECEIVED)
        self.snd_una = ack
        if self.snd_nxt < ack:
            self.snd_nxt = ack
        self.send_buffer.release(ack)
        if self.scoreboard:
            self.scoreboard.acknowledge(ack)
        echo = self.ts_echo
        if echo:  # RFC 7323 4.1 RTTM: the TSecr of any ACK of new data times its round trip (ms clock)
            self.ts_echo = None
            elapsed = (self._tsval(now) - echo) & MASK
            if elapsed < 60_000:  # not from the future nor absurd (a peer's bad TSecr sets no 60 s RTO)
                expected = -(-(self.snd_max - ack + acked) // (2 * self.mss))  # RFC 7323 appendix G
                self.rtt.timestamp_sample((elapsed or 1) / 1000, expected)
            else:
                self.rtt.on_ack(ack, now)
        else:
            self.rtt.on_ack(ack, now)
        self.retransmissions = 0
        self.first_timeout = None
        self.heard = True
        flight = self.snd_max - ack
        if synchronized and self.congestion.on_new_ack(acked, ack, flight):
            self.retransmit_now = True  # a partial ACK in NewReno recovery: the next hole
            self.rtt.on_retransmit()
        # RFC 6298 5.2 and 5.3: stop the timer when all is acknowledged, else restart it.
        self.rtx_deadline = now + self.rtt.timeout if flight else None

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self.rtx_deadline = self.delack_deadline = self.fin_wait_2_deadline = None
        self.time_wait_deadline = now + 2 * self.config.msl

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 3.2, 4.2, 5.2; rate-limited per second (section 7)."""
        second = int(now)
        if second != self.challenge_second:
            self.challenge_second, self.challenge_count = second, 0
        if self.challenge_count < self.config.challenge_acks_per_second:
            self.challenge_count += 1
            self.control.append(self._segment(self._ack_seq(), ACK))

    def _close(self, error: str | None) -> None:
        self.state = CLOSED
        if error is not None and self.error is None:
            self.error = error
        self.rtx_deadline = self.delack_deadline = self.time_wait_deadline = self.fin_wait_2_deadline = None
        self.ack_pending = self.retransmit_now = self.probe_due = False
        self.duplicate_acks_owed = 0

    def __repr__(self) -> str:
        return (f"TcpConnection({self.local[1]}>{self.remote[1]} {self.state.name} una={self.snd_una - self.iss} "
                f"nxt={self.snd_nxt - self.iss} rcv={self.rcv_nxt - self.irs} error={self.error!r})")
