"""What an operator sees of a running gateway: Prometheus metrics, structured logs carrying a
request id, and the pure-ASGI middleware that produces both for every HTTP request.

It sits at the bottom of the layers (it imports only the standard library,
``prometheus_client`` and Starlette types), so any layer may count or log through it, and it
knows nothing of ledgers, partners or GraphQL: the composition root (``gateway.app``) wires it.
"""
