"""TCP for the userspace stack: RFC 9293, one concern per module (docs/netstack.md).

| module | what | spec |
|---|---|---|
| `segment.py` | `Segment`, `parse` (checksum, offset, options checked), `pack` | RFC 9293 3.1, 7323, 2018 |
| `isn.py` | `IsnGenerator`: a 4 us clock plus BLAKE2s of the four-tuple, keyed | RFC 6528 |
| `rtt.py` | `RttEstimator`: SRTT, RTTVAR, Karn's rule, backoff | RFC 6298 |
| `congestion.py` | `NewReno`: slow start, avoidance, fast retransmit and recovery | RFC 5681, 6582, 6928 |
| `sack.py` | `Scoreboard`: the peer's SACK blocks, the holes to retransmit | RFC 2018, RFC 6675 |
| `buffers.py` | `SendBuffer`, `ReceiveBuffer` (out-of-order pieces kept, bounded) | RFC 9293 3.10 |
| `config.py` | `TcpState`, `TcpConfig` (frozen: limits and timings) | RFC 9293 3.3.2 |
| `connection.py` | `TcpConnection`: the state machine of one connection | RFC 9293 3.10, RFC 5961 |

Choices, where the RFCs leave one or Linux differs (each is argued where it is made):
- RTO floor 200 ms (Linux's TCP_RTO_MIN), not RFC 6298's 1 s; at most 60 s; 3 s after a timed-out SYN.
- Delayed ACKs: at least every second full-sized segment, none delayed over 40 ms (Linux's minimum).
- Nagle off (as TCP_NODELAY); sender and receiver SWS avoidance on.
- TIME-WAIT 2*MSL with MSL 30 s (60 s, Linux's TCP_TIMEWAIT_LEN); a newer SYN may reopen it (`reopens_with`).
- Timestamps never offered (no RTTM or PAWS); SACK offered: blocks sent in pure ACKs, the peer's used in
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
