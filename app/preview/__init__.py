"""The port preview: ``/preview/{port}/...`` proxies HTTP and websockets to a port published
inside the caller's own sandbox, so an attendee opens the web server they started without
wildcard DNS (issue 15). The instructor opens any attendee's through a signed grant.

Parts: ``target`` (whose sandbox, which address: never taken from the request), ``grants``
(the instructor's signed links), ``headers`` (what crosses the proxy and how redirects and
cookies are rewritten), ``http`` and ``websocket`` (the two relays), ``rescue`` (absolute
paths that escaped the prefix, brought back by their Referer) and ``ports`` (what the
sandbox publishes, for the terminal panel). The limits below are documented in the README.
"""

from __future__ import annotations

CONNECT_TIMEOUT = 5.0  # seconds to reach the port: nothing listening fails at once anyway
READ_TIMEOUT = 120.0  # seconds the app may stay silent before its answer (or between chunks)
MAX_REQUEST_BODY = 32 * 1024 * 1024  # bytes an upload may carry; more is refused with 413
MAX_WEBSOCKET_MESSAGE = 1024 * 1024  # bytes in one websocket message, either way; more: 1009
