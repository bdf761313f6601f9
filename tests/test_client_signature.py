"""The client's options are spelled out, once, and typed for each adapter.

`WeexWebSocketClient(max_retry=3)` must fail where it is written (mypy; TypeError at run time),
not be swallowed by a `**options` catch-all, and both adapters must offer the same options.
"""

from __future__ import annotations

import inspect
import typing

import pytest

import weex_anyio
import weex_trio

CLIENTS = [weex_anyio.WeexWebSocketClient, weex_trio.WeexWebSocketClient]
DOCUMENTED = ["max_retries", "backoff_base", "backoff_max", "ping_interval", "ping_timeout"]


@pytest.mark.parametrize("client_class", CLIENTS, ids=["anyio", "trio"])
def test_every_option_is_a_named_keyword(client_class: type[object]) -> None:
    parameters = inspect.signature(client_class).parameters
    kinds = {p.kind for name, p in parameters.items() if name != "config"}
    assert kinds == {inspect.Parameter.KEYWORD_ONLY}  # no **options to hide a typo
    names = list(parameters)
    assert names[0] == "config"
    assert names[1 : 1 + len(DOCUMENTED)] == DOCUMENTED  # the guide's order
    with pytest.raises(TypeError, match="max_retry"):
        client_class(max_retry=3)  # type: ignore[call-arg]


def test_both_adapters_offer_the_same_options_with_their_own_transport_type() -> None:
    anyio_params = inspect.signature(weex_anyio.WeexWebSocketClient).parameters
    trio_params = inspect.signature(weex_trio.WeexWebSocketClient).parameters
    assert list(anyio_params) == list(trio_params)
    anyio_base = typing.get_args(weex_anyio.WeexWebSocketClient.__orig_bases__[0])  # type: ignore[attr-defined]
    trio_base = typing.get_args(weex_trio.WeexWebSocketClient.__orig_bases__[0])  # type: ignore[attr-defined]
    assert anyio_base == (weex_anyio.Transport,)
    assert trio_base == (weex_trio.Transport,)
