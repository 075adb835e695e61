"""The sending side of a TCP connection (Linux's tcp_output.c and tcp_timer.c): segment building, the
window we advertise, data within the peer's window and cwnd with sender SWS avoidance and Nagle
(RFC 9293 3.8.6.2.1, 3.7.4), fast and SACK retransmission, the one timer for retransmission (RFC 6298)
and persistence (RFC 9293 3.8.6.1). With timestamps (RFC 7323 3.2), every segment but a RST carries
<TSval, TS.Recent>, and Last.ACK.sent (4.3) is the RCV.NXT of the latest segment sent.

``TcpOutput`` is a mixin of ``TcpConnection`` (connection.py), which holds the state and reads input;
it has no state of its own.
"""

from __future__ import annotations

from .config import TcpState
from .segment import ACK, FIN, PSH, RST, SYN, Segment

MASK = 0xFFFFFFFF
SYN_SENT, SYN_RECEIVED, ESTABLISHED = TcpState.SYN_SENT, TcpState.SYN_RECEIVED, TcpState.ESTABLISHED
FIN_WAIT_2, TIME_WAIT = TcpState.FIN_WAIT_2, TcpState.TIME_WAIT
SENDING = frozenset({ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT_1, TcpState.CLOSING, TcpState.LAST_ACK})
TIMED_OUT = "timed out"


class TcpOutput:
    """What leaves a connection, and when: ``segments_to_send``, ``next_deadline``, ``handle_timer``."""

    __slots__ = ()

    def _tsval(self, now: float) -> int:
        """Our timestamp clock (RFC 7323 5.4): milliseconds of ``now`` from this connection's offset."""
        return (self.ts_offset + int(now * 1000)) & MASK

    def _window(self) -> int:
        """The window field to send, moving the advertised right edge only by useful amounts (RFC 9293
        3.8.6.2.2, receiver SWS avoidance); never shrinking it, so a scaled window is rounded up (as
        Linux's tcp_select_window: the few bytes beyond the buffer, if sent, are trimmed and ACKed)."""
        rcv_nxt = self.rcv_nxt
        free = self.receive_buffer.window
        limit = 0xFFFF << self.rcv_wscale
        edge = rcv_nxt + (free if free < limit else limit)
        if edge >= self.rcv_adv + min(self.mss_offered, self.receive_buffer.capacity >> 1) or (
                edge > self.rcv_adv and free == self.receive_buffer.capacity):
            self.rcv_adv = edge
        offered = self.rcv_adv - rcv_nxt
        if offered <= 0:
            return 0
        window = (offered + (1 << self.rcv_wscale) - 1) >> self.rcv_wscale
        return window if window < 0xFFFF else 0xFFFF

    def _ack_seq(self) -> int:
        """The sequence number of an ACK or RST carrying no data: SND.NXT in RFC 9293 terms. Ours goes
        back after a timeout (go-back-N), and the peer may hold more than SND.NXT, so take the highest
        sent, within the peer's window (Linux's tcp_acceptable_seq), or the peer would refuse the ACK."""
        return max(min(self.snd_max, self.snd_una + self.snd_wnd), self.snd_una)

    def _pure_ack(self) -> Segment:
        """An ACK without data; with SACK blocks (RFC 2018 3, 4) when the peer allowed them and data
        waits beyond a gap: the block of the latest such segment first, then the others, four at most.
        Data segments carry none: their payload would have to shrink by the options' length."""
        ack = self._segment(self._ack_seq(), ACK)
        if self.sack_ok and self.receive_buffer.has_out_of_order:
            blocks = self.receive_buffer.blocks()
            latest = self.last_out_of_order
            blocks.sort(key=lambda block: not block[0] <= latest < block[1])  # stable: the rest in order
            ack.sack_blocks = tuple((left & MASK, right & MASK) for left, right in blocks[:4])
        return ack

    def _segment(self, seq: int, flags: int, payload=b"") -> Segment:
        timestamps = (self._tsval(self.now), self.ts_recent) if self.ts_ok and not flags & RST else None
        return Segment(self.local[1], self.remote[1], seq & MASK, self.rcv_nxt & MASK, flags, self._window(), payload,
                       timestamps=timestamps)

    def _segment_raw(self, seq: int, ack: int, flags: int) -> Segment:
        """A segment not of this connection's sequence space: the RST answering a bad ACK."""
        return Segment(self.local[1], self.remote[1], seq & MASK, ack & MASK, flags, 0)

    def segments_to_send(self, now: float) -> list[Segment]:
        """What to transmit now: RSTs and challenge ACKs, SYN, data, retransmissions, FIN, ACKs.

        Call it after ``receive``, ``handle_timer`` and the user's calls (send, recv, shutdown_write...).
        """
        self.now = now
        out = self.control
        self.control = []
        state = self.state
        if state is ESTABLISHED or state in SENDING:
            self._send_data(out, now)
        elif state is SYN_SENT or state is SYN_RECEIVED:
            self._send_syn(out, now)
        elif state is TIME_WAIT or state is FIN_WAIT_2:
            self._send_acks(out, False)
        if out:
            self.last_ack_sent = self.rcv_nxt  # each segment acknowledges RCV.NXT (RFC 7323 4.3)
        return out

    def _send_acks(self, out: list, carried: bool) -> None:
        """The ACKs owed: one pure ACK per out-of-order segment (a segment with data is no duplicate ACK),
        else one if an ACK is due and no segment ``carried`` it."""
        owed = self.duplicate_acks_owed
        if owed:
            ack = self._pure_ack()
            out.extend([ack] * owed)
        elif self.ack_pending and not carried:
            out.append(self._pure_ack())
        elif not carried:
            return
        self._acked()

    def _acked(self) -> None:
        self.ack_pending = False
        self.unacked_bytes = 0
        self.delack_deadline = None
        self.duplicate_acks_owed = 0

    def _send_syn(self, out: list, now: float) -> None:
        """The SYN (SYN-SENT) or SYN,ACK (SYN-RECEIVED): first sending, or again after a timeout."""
        if self.snd_nxt != self.iss and not (self.state is SYN_RECEIVED and self.ack_pending):
            return
        config = self.config
        if self.state is SYN_SENT:
            syn = Segment(self.local[1], self.remote[1], self.iss, 0, SYN, min(self.receive_buffer.window, 0xFFFF),
                          mss=self.mss_offered, window_scale=config.window_scale, sack_permitted=True,
                          timestamps=(self._tsval(now), 0) if config.timestamps else None)
        else:
            # RFC 7323 2.2: a window scale in the SYN,ACK only if the SYN had one (rcv_wscale says so).
            offered = self.rcv_wscale if self.snd_wscale or self.rcv_wscale else None
            syn = Segment(self.local[1], self.remote[1], self.iss, self.rcv_nxt & MASK, SYN | ACK,
                          min(self.receive_buffer.window, 0xFFFF), mss=self.mss_offered, window_scale=offered,
                          sack_permitted=self.sack_ok,
                          timestamps=(self._tsval(now), self.ts_recent) if self.ts_ok else None)
        out.append(syn)
        self._acked()
        if self.snd_max == self.iss:
            self.rtt.start(self.iss + 1, now)
        else:
            self.rtt.on_retransmit()
        self.snd_nxt = self.snd_max = self.iss + 1
        if self.rtx_deadline is None:
            self.rtx_deadline = now + self.rtt.timeout

    def _send_data(self, out: list, now: float) -> None:
        """Data within min(SND.WND, cwnd), then the FIN; a pure ACK if nothing else carries one."""
        sent = len(out)
        buffer = self.send_buffer
        data_end = buffer.end
        snd_una = self.snd_una
        mss = self.mss
        fin_seq = self.fin_seq
        if self.retransmit_now:  # fast retransmit (RFC 5681 3.2) or a NewReno partial ACK
            self.retransmit_now = False
            board = self.scoreboard
            if board and self.congestion.in_recovery:
                # The holes the peer's SACK blocks show, each once per recovery (sack.py).
                for seq, n in board.holes(max(board.rexmit_next, snd_una), self.congestion.cwnd, mss):
                    n = min(n, data_end - seq)
                    if n <= 0:
                        break
                    out.append(self._segment(seq, ACK, buffer.read(seq, n)))
                    board.rexmit_next = seq + n
            elif snd_una < data_end:  # NewReno: the first unacknowledged segment
                n = min(mss, data_end - snd_una)
                flags = ACK | FIN if fin_seq == snd_una + n else ACK
                out.append(self._segment(snd_una, flags, buffer.read(snd_una, n)))
            elif fin_seq == snd_una:
                out.append(self._segment(snd_una, FIN | ACK))
        congestion = self.congestion
        cwnd = congestion.cwnd
        if congestion.duplicate_acks and not congestion.in_recovery:
            # Limited Transmit (RFC 3042): a new segment for each of the first two duplicate ACKs, so a
            # small window still brings the third one (without it, a loss in a flight of three or four
            # segments waited for the timeout).
            cwnd += min(congestion.duplicate_acks, 2) * mss
        edge = snd_una + min(self.snd_wnd, cwnd)
        probing = self.probe_due
        if probing:  # RFC 9293 3.8.6.1: one octet beyond a zero window
            self.probe_due = False
            if edge <= snd_una:
                edge = snd_una + 1
        snd_nxt = self.snd_nxt
        # Outstanding in the sense of SWS avoidance and Nagle: sent since SND.UNA by this pointer. After a
        # timeout SND.NXT is back at SND.UNA, so the retransmission is never held back by them.
        in_flight = snd_nxt > snd_una
        snd_max = self.snd_max
        window = self._window()
        ports = self.local[1], self.remote[1]
        ack_field = self.rcv_nxt & MASK
        timestamps = (self._tsval(now), self.ts_recent) if self.ts_ok else None
        while snd_nxt < data_end:
            n = min(mss, data_end - snd_nxt, edge - snd_nxt)
            if n <= 0:
                break
            if probing or snd_nxt < snd_max:
                pass  # a probe or a retransmission: whatever the window allows
            elif n < mss and n < data_end - snd_nxt and in_flight:
                # Sender SWS avoidance (RFC 9293 3.8.6.2.1): no small segment while one is outstanding,
                # unless it is at least half the largest window the peer offered.
                if n < self.max_snd_wnd >> 1 or self.config.nagle:
                    break
            elif self.config.nagle and n < mss and in_flight:  # Nagle (RFC 9293 3.7.4)
                break
            end = snd_nxt + n
            flags = ACK
            if end == data_end:
                flags = ACK | PSH
                if fin_seq == end:
                    flags = ACK | PSH | FIN
            out.append(Segment(*ports, snd_nxt & MASK, ack_field, flags, window, buffer.read(snd_nxt, n),
                               timestamps=timestamps))
            if flags & FIN:
                end += 1
            if end > self.snd_max:
                if snd_nxt >= self.snd_max:
                    self.rtt.start(end, now)
                self.snd_max = end
            else:
                self.rtt.on_retransmit()
            snd_nxt = end
            in_flight = True
        if fin_seq is not None and snd_nxt == fin_seq:
            out.append(self._segment(fin_seq, FIN | ACK))
            snd_nxt += 1
            if snd_nxt > self.snd_max:
                self.snd_max = snd_nxt
                self.rtt.start(snd_nxt, now)
            else:
                self.rtt.on_retransmit()
        self.snd_nxt = snd_nxt
        self._send_acks(out, len(out) > sent)
        # The one timer: running while anything is outstanding, or data waits behind a zero window.
        if self.rtx_deadline is None and (self.snd_max > self.snd_una or (snd_nxt < data_end and self.snd_wnd == 0)):
            self.rtx_deadline = now + self.rtt.timeout

    # -- timers --------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.rtx_deadline, self.delack_deadline, self.time_wait_deadline,
                                 self.fin_wait_2_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Run the timers due at ``now``; then call ``segments_to_send``."""
        self.now = now
        if self.fin_wait_2_deadline is not None and now >= self.fin_wait_2_deadline:
            self.control.append(self._segment(self._ack_seq(), RST | ACK))
            self._close(TIMED_OUT)
            return
        if self.time_wait_deadline is not None and now >= self.time_wait_deadline:
            self._close(None)  # RFC 9293 3.10.8: the time-wait timeout deletes the TCB
            return
        if self.delack_deadline is not None and now >= self.delack_deadline:
            self.delack_deadline = None
            self.ack_pending = True
        if self.rtx_deadline is not None and now >= self.rtx_deadline:
            self._on_timeout(now)

    def _on_timeout(self, now: float) -> None:
        """The retransmission timer expired (RFC 6298 5.4 - 5.6), or the persist timer (3.8.6.1)."""
        state = self.state
        probing = self.snd_wnd == 0 and state not in (SYN_SENT, SYN_RECEIVED)
        # A peer that keeps answering probes of its zero window is alive (RFC 9293 3.8.6.1: keep probing).
        if not (probing and self.heard):
            self.retransmissions += 1
        self.heard = False
        if self.first_timeout is None:
            self.first_timeout = now
        config = self.config
        limit = config.max_syn_retransmissions if state in (SYN_SENT, SYN_RECEIVED) else config.max_retransmissions
        if self.retransmissions > limit or (config.user_timeout is not None
                                            and now - self.first_timeout >= config.user_timeout):
            self._close(TIMED_OUT)  # as Linux, no RST: the peer is presumed unreachable
            return
        if probing:
            self.probe_due = True
        elif state in (SYN_SENT, SYN_RECEIVED):
            self.syn_timed_out = True
        else:
            self.congestion.on_timeout(self.snd_max - self.snd_una, self.snd_max)
        self.rtt.on_timeout()
        self.snd_nxt = self.snd_una  # go back N: everything outstanding is sent again, within cwnd
        self.scoreboard.clear()  # RFC 2018 8: what was SACKed may have been discarded since
        if state is SYN_RECEIVED:
            self.ack_pending = True
        self.rtx_deadline = now + self.rtt.timeout
