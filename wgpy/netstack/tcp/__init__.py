"""TCP for the userspace stack: RFC 9293, one concern per module (docs/netstack.md)."""

from .config import TcpConfig, TcpState
from .connection import TcpConnection
from .isn import IsnGenerator
from .segment import Segment, parse

__all__ = ["IsnGenerator", "Segment", "TcpConfig", "TcpConnection", "TcpState", "parse"]
