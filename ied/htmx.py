"""One template per page; htmx requests get a named block of it, other requests the whole page."""

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render_block(template_name: str, block_name: str, **context) -> str:
    """Render one `{% block %}` of a page template with the same context the page would get."""
    current_app.update_template_context(context)
    template = current_app.jinja_env.get_template(template_name)
    return "".join(template.blocks[block_name](template.new_context(context)))


def page_or_block(
    template_name: str, block_name: str, status: int = 200, **context
) -> ResponseReturnValue:
    """The block for htmx (`Vary: HX-Request` so caches keep the two apart), else the page."""
    body = (
        render_block(template_name, block_name, **context)
        if is_htmx()
        else render_template(template_name, **context)
    )
    return body, status, {"Vary": "HX-Request"}
