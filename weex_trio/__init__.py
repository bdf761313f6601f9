"""Native trio adapter for weex-ws (see issue 4)."""
