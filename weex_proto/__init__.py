"""Sans-IO core of weex-ws: WEEX futures WebSocket v2 as pure state machines (no I/O, no clock)."""
