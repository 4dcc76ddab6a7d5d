"""ASGI middleware, one per file, each in Starlette's shape: `__init__(app, **options)` + `__call__(scope, receive,
send)`.

- `csrf.CSRFPrevention`: refuses GraphQL GETs a browser could send from another site without a preflight.
- `security_headers`: `X-Content-Type-Options: nosniff` (and any other fixed header) on every answer, added by the
  outermost layer (`gateway.observability.middleware.Observe`), which wraps `send` anyway.
- `direct_route.DirectRoute`: `/graphql` requests go straight to the endpoint, past Starlette's router.
- `cors.cors_middleware`: Starlette's `CORSMiddleware` configured for the gateway's clients, from an allowlist.
"""
