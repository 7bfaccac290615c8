"""Security headers on every answer, set in one place."""

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SIGNED_LINK_PREFIX = "/d/"


def init_app(app: Flask) -> None:
    production = app.config["IED_ENV"] == "production"

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # A view that frames its own content (the mail catcher's email part) sets its own.
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        # A signed link is a bearer credential: it must never leak through a Referer.
        signed_page = request.path.startswith(SIGNED_LINK_PREFIX)
        response.headers["Referrer-Policy"] = "no-referrer" if signed_page else "same-origin"
        if production:
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        # Pages carry customer names, phones and addresses: no shared or browser cache keeps them.
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response
