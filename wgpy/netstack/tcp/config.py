"""The states of a TCP connection (RFC 9293 3.3.2) and the limits and timings of one (``TcpConfig``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TcpState(Enum):
    """RFC 9293 3.3.2, by its names."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


@dataclass(frozen=True)
class TcpConfig:
    """Limits and timings. The defaults follow Linux where the RFCs leave a choice; each says why."""

    send_buffer: int = 256 * 1024
    receive_buffer: int = 256 * 1024
    # Bytes kept beyond a gap (RFC 9293 3.10.7.4 allows holding them); at most one receive window.
    out_of_order_limit: int = 256 * 1024
    # MSL shortened to 30 s: TIME-WAIT lasts 2*MSL = 60 s, as Linux's TCP_TIMEWAIT_LEN (RFC 9293 3.4.2).
    msl: float = 30.0
    initial_rto: float = 1.0  # RFC 6298 2.1
    min_rto: float = 0.2  # Linux's TCP_RTO_MIN; RFC 6298 2.4 says 1 s (see rtt.py)
    max_rto: float = 60.0  # RFC 6298 2.5
    # Retransmissions of one segment before "timed out": Linux's tcp_retries2 (15) and tcp_syn_retries (6).
    max_retransmissions: int = 15
    max_syn_retransmissions: int = 6
    # RFC 9293 3.8.3 "user timeout": give up when data stays unacknowledged this long (None: only the count).
    user_timeout: float | None = None
    # Delayed ACKs (RFC 9293 3.8.6.3, RFC 5681 4.2): an ACK for at least every second full-sized segment,
    # and none delayed beyond 40 ms, Linux's TCP_DELACK_MIN: Linux starts there and the RFC's 500 ms bound
    # is far above what a tunnel's RTTs need.
    delayed_ack: float = 0.04
    # Nagle's algorithm (RFC 9293 3.7.4) off, as TCP_NODELAY: the stack carries streams for programs
    # (a proxy, an asyncio StreamWriter) that write whole messages and wait for answers; Nagle would hold a
    # request's last small segment for an RTT. Sender SWS avoidance (3.8.6.2.1) still applies.
    nagle: bool = False
    # Orphaned connections (closed, waiting for the peer's FIN) give up after this: Linux's tcp_fin_timeout.
    fin_wait_2_timeout: float = 60.0
    # RFC 5961 7: challenge ACKs per second per connection (Linux: a per-host budget, 1000/s).
    challenge_acks_per_second: int = 10
    # RFC 7323 3: offer the Timestamps option on SYN (used only when both sides did): RTTM and PAWS, and
    # the TSval that lets Linux take a SYN for a four-tuple it holds in TIME-WAIT (RFC 6191). Off: none.
    timestamps: bool = True

    def __post_init__(self) -> None:
        if self.send_buffer < 1 or self.receive_buffer < 1 or self.receive_buffer > 1 << 30:
            raise ValueError("buffer sizes must be between 1 byte and 1 GiB")
        if not 0 < self.min_rto <= self.initial_rto <= self.max_rto:
            raise ValueError("need 0 < min_rto <= initial_rto <= max_rto")

    @property
    def window_scale(self) -> int:
        """The shift we offer (RFC 7323 2.2): the smallest that lets the receive buffer be advertised."""
        shift = 0
        while self.receive_buffer >> shift > 0xFFFF:
            shift += 1
        return min(shift, 14)
