from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, SelectField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ied.form_values import optional_int
from ied.leads.models import PATH_LABELS, PRODUCT_LABELS
from ied.leads.services import LeadInput


class NewLeadForm(FlaskForm):
    """A phone-in. The lead service checks the values, so the form only collects them."""

    customer_name = StringField("Customer name")
    email = EmailField("Email")
    phone = TelField("Phone")
    address = TextAreaField("Address")
    postcode = StringField("Postcode")
    product_interest = SelectField(
        "Product",
        choices=[
            SelectChoice(value, label)
            for value, label in [("", "Choose a product"), *PRODUCT_LABELS.items()]
        ],
        validate_choice=False,
    )
    selected_path = RadioField(
        "Customer chose",
        choices=[SelectChoice(value, label) for value, label in PATH_LABELS.items()],
        validate_choice=False,
        default="compare_quotes",
    )
    recommendation = TextAreaField("Recommendation")
    recommended_installer_id = SelectField(
        "Recommended installer", coerce=optional_int, validate_choice=False
    )
    notes = TextAreaField("Notes")

    def lead_input(self) -> LeadInput:
        return LeadInput(
            customer_name=self.customer_name.data or "",
            email=self.email.data or None,
            phone=self.phone.data or None,
            address=self.address.data or None,
            postcode=self.postcode.data or "",
            product_interest=self.product_interest.data or "",
            selected_path=self.selected_path.data or "",
            recommendation=self.recommendation.data or None,
            recommended_installer_id=self.recommended_installer_id.data,
            notes=self.notes.data or None,
        )
