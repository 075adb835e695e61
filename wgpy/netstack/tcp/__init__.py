"""TCP for the userspace stack: RFC 9293, one concern per module (docs/netstack.md)."""
