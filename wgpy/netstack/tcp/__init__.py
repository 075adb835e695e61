"""TCP for the userspace stack: RFC 9293, one concern per module (docs/netstack.md).

| module | what | spec |
|---|---|---|
| `segment.py` | `Segment`, `parse` (checksum, offset, options checked), `pack` | RFC 9293 3.1, 7323, 2018 |
| `isn.py` | `IsnGenerator`: a 4 us clock plus BLAKE2s of the four-tuple, keyed; timestamp offsets | RFC 6528, 7323 5.4 |
| `rtt.py` | `RttEstimator`: SRTT, RTTVAR, Karn's rule, backoff; timestamp samples | RFC 6298, 7323 4.1, G |
| `congestion.py` | `NewReno`: slow start, avoidance, fast retransmit and recovery | RFC 5681, 6582, 6928 |
| `sack.py` | `Scoreboard`: the peer's SACK blocks, the holes to retransmit | RFC 2018, RFC 6675 |
| `buffers.py` | `SendBuffer`, `ReceiveBuffer` (out-of-order pieces kept, bounded) | RFC 9293 3.10 |
| `config.py` | `TcpState`, `TcpConfig` (frozen: limits and timings) | RFC 9293 3.3.2 |
| `connection.py` | `TcpConnection`: the state machine of one connection, its input; PAWS | RFC 9293 3.10, RFC 5961, 7323 |
| `output.py` | `TcpOutput`, its sending side: segments, retransmission and persist timer, SWS, Nagle | RFC 9293 3.8.6, 6298 |

Choices, where the RFCs leave one or Linux differs (each is argued where it is made):
- RTO floor 200 ms (Linux's TCP_RTO_MIN), not RFC 6298's 1 s; at most 60 s; 3 s after a timed-out SYN.
- Delayed ACKs: at least every second full-sized segment, none delayed over 40 ms (Linux's minimum).
- Nagle off (as TCP_NODELAY); sender and receiver SWS avoidance on.
- TIME-WAIT 2*MSL with MSL 30 s (60 s, Linux's TCP_TIMEWAIT_LEN); a newer SYN may reopen it (`reopens_with`).
- Timestamps offered (RFC 7323; `TcpConfig.timestamps`): RTTM on every ACK of new data (appendix G's
  gains), PAWS, 12 bytes less data per segment; the clock starts at a per-connection offset, or counts
  wall-clock ms when the stack is given an epoch (the runtime: a later process's SYN then passes Linux's
  TIME-WAIT check, RFC 6191). A segment without TSopt on a timestamped connection is accepted (as Linux).
- SACK offered: blocks sent in pure ACKs, the peer's used in
  fast recovery; Limited Transmit (RFC 3042); after a timeout, go-back-N from SND.UNA (the scoreboard is
  forgotten, RFC 2018 8). No RACK, tail loss probes or early retransmit (Linux has them).
- Closing with unread data sends RST (as Linux, RFC 2525 2.17); an orphan in FIN-WAIT-2 gives up after 60 s.
- Timeouts close without RST (as Linux): "timed out" after 15 retransmissions (6 for a SYN) or the user
  timeout, if set; a peer that answers zero-window probes is timed out only by that user timeout.
"""

from .config import TcpConfig, TcpState
from .connection import TcpConnection
from .isn import IsnGenerator
from .segment import Segment, parse

__all__ = ["IsnGenerator", "Segment", "TcpConfig", "TcpConnection", "TcpState", "parse"]
