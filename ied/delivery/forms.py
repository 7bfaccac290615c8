from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired

from ied.delivery.links import LinkBoundCSRF
from ied.finance.models import RETURN_REASONS
from ied.finance.services import REASON_TEXT_LIMIT
from ied.followups.forms import choices
from ied.input_limits import StorableText


class ReturnRequestForm(FlaskForm):
    """The installer's return request on the signed lead page. That page has no session, so
    its CSRF token is bound to the link: build it with `meta={"csrf_context": assignment}`."""

    class Meta:
        csrf_class = LinkBoundCSRF

    reason = RadioField(
        "Why should this lead be returned?",
        choices=choices(RETURN_REASONS.items()),
        validators=[DataRequired("Choose why the lead should be returned.")],
    )
    reason_text = TextAreaField(
        "Details (required for Other)",
        filters=[lambda text: text.strip() if text else text],
        validators=[StorableText(REASON_TEXT_LIMIT, multiline=True)],
    )
