"""The client runtime: the public client written once for any event loop, on the core.

`client_base.BaseClient` is the whole client API; `runner.ConnectionRunner` keeps one connection
going; `backend.Backend` is what an adapter supplies (events, locks, cancel scopes, sockets);
`hub.ClientHub` holds every decision the client makes that is not I/O, with what only it uses
(`books`, `connections`, `fanout`, `health`, `plans`); `tls` builds the default TLS context
and `tunnel` drives a proxy handshake over a stream. Async code lives here only: the state
machines at the top level of `weex_proto` neither await nor import anything from here.
"""
