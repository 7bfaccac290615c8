"""One template per page; htmx requests get a named block of it, other requests the whole page."""

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue


def is_htmx() -> bool:
    """An htmx swap; a history restore (back/forward after a cache miss) wants the whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_block(template_name: str, block_name: str, **context) -> str:
    """Render one `{% block %}` of a page template with the same context the page would get."""
    current_app.update_template_context(context)
    template = current_app.jinja_env.get_template(template_name)
    return "".join(template.blocks[block_name](template.new_context(context)))


def page_or_block(
    template_name: str, block_name: str, status: int = 200, **context
) -> ResponseReturnValue:
    """The block for htmx (`Vary: HX-Request` so caches keep the two apart), else the page."""
    return page_or_blocks(template_name, [block_name], status, **context)


def page_or_blocks(
    template_name: str, block_names: list[str], status: int = 200, **context
) -> ResponseReturnValue:
    """Like page_or_block, with more blocks for htmx: the first answers the request's target,
    the others are rendered with `oob=True` so their root element swaps itself out of band."""
    if not is_htmx():
        return render_template(template_name, **context), status, {"Vary": "HX-Request"}
    first, *others = block_names
    body = render_block(template_name, first, **context) + "".join(
        render_block(template_name, name, **{**context, "oob": True}) for name in others
    )
    return body, status, {"Vary": "HX-Request"}
