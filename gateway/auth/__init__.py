"""OAuth2 for the gateway (DESIGN §8): client credentials, RFC 9068 JWT access tokens,
introspection (RFC 7662), revocation (RFC 7009) and server metadata (RFC 8414).

The protocol core (``server``) is authlib's, driven through a framework-free adapter; only
``endpoints`` and ``service`` know about Starlette. The app wires :class:`AuthService`,
:func:`auth_routes` and ``cli.register``.
"""
