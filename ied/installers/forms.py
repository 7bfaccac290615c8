from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (
    DecimalField,
    EmailField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TelField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from ied.input_limits import MAX_ID, StorableText, column_length
from ied.installers.models import Installer
from ied.installers.services import InstallerInput
from ied.leads.models import PRODUCT_LABELS

# Numeric(10, 2): eight digits before the point.
MAX_PRICE = Decimal("99999999.99")


def _storable(column: str) -> StorableText:
    return StorableText(column_length(Installer, column))


class AtMost:
    """A typed number no larger than `maximum`. A value that did not parse keeps its field's
    one error (no range error after it); NaN and infinity are not numbers (and a signalling
    NaN cannot even be compared)."""

    def __init__(self, maximum: int | Decimal):
        self.maximum = maximum

    def __call__(self, form, field) -> None:
        value = field.data
        if value is None:
            raise StopValidation()  # not a number: the field already says so
        if isinstance(value, Decimal) and not value.is_finite():
            raise StopValidation("Give a number, such as 25 or 25.50.")
        if value > self.maximum:
            raise StopValidation(f"Give a number up to {self.maximum}.")


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class InstallerForm(FlaskForm):
    """Collects and types the values; the installer service decides whether they are right."""

    company_name = StringField("Company", validators=[_storable("company_name")])
    contact_name = StringField("Contact name", validators=[_storable("contact_name")])
    delivery_email = EmailField("Delivery email", validators=[_storable("delivery_email")])
    phone = TelField("Phone", validators=[_storable("phone")])
    service_areas = StringField("Service areas", validators=[StorableText(1000)])
    products = CheckboxesField(
        "Products",
        choices=[SelectChoice(value, label) for value, label in PRODUCT_LABELS.items()],
        validate_choice=False,
    )
    cycle_cap = IntegerField("Cycle cap", validators=[Optional(), AtMost(MAX_ID)])
    price_per_lead = DecimalField(
        "Price per lead (£)", places=2, validators=[Optional(), AtMost(MAX_PRICE)]
    )
    billing_anchor_day = IntegerField(
        "Billing anchor day", validators=[Optional(), AtMost(MAX_ID)], default=1
    )
    return_limit_percent = IntegerField("Return limit (%)", validators=[Optional(), AtMost(MAX_ID)])

    def fill_from(self, installer: Installer) -> None:
        self.process(obj=installer)
        self.service_areas.data = ", ".join(installer.service_areas or [])

    def installer_input(self) -> InstallerInput:
        return InstallerInput(
            company_name=self.company_name.data or "",
            contact_name=self.contact_name.data or "",
            delivery_email=self.delivery_email.data or "",
            phone=self.phone.data or None,
            service_areas=[area for area in (self.service_areas.data or "").split(",")],
            products=list(self.products.data or []),
            cycle_cap=self.cycle_cap.data,
            price_per_lead=self.price_per_lead.data,
            billing_anchor_day=self.billing_anchor_day.data,
            return_limit_percent=self.return_limit_percent.data,
        )
