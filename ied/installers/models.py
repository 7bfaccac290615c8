from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from ied.extensions import db
from ied.timestamps import UTCDateTime, utcnow

# Regions an installer may name instead of postcode prefixes: postcode areas per region.
REGIONS = {
    "london": (
        "E",
        "EC",
        "N",
        "NW",
        "SE",
        "SW",
        "W",
        "WC",
        "BR",
        "CR",
        "DA",
        "EN",
        "HA",
        "IG",
        "KT",
        "RM",
        "SM",
        "TW",
        "UB",
    ),
    "south_east": ("BN", "CT", "GU", "ME", "MK", "OX", "PO", "RG", "RH", "SL", "SO", "TN", "HP"),
    "south_west": ("BA", "BH", "BS", "DT", "EX", "GL", "PL", "SN", "SP", "TA", "TQ", "TR"),
    "east": ("AL", "CB", "CM", "CO", "IP", "LU", "NR", "PE", "SG", "SS", "WD"),
    "midlands": (
        "B",
        "CV",
        "DE",
        "DY",
        "LE",
        "LN",
        "NG",
        "NN",
        "ST",
        "WS",
        "WV",
        "WR",
        "HR",
        "TF",
        "SY",
    ),
    "north_west": (
        "BB",
        "BL",
        "CA",
        "CH",
        "CW",
        "FY",
        "L",
        "LA",
        "M",
        "OL",
        "PR",
        "SK",
        "WA",
        "WN",
    ),
    "north_east": ("DH", "DL", "NE", "SR", "TS"),
    "yorkshire": ("BD", "DN", "HD", "HG", "HU", "HX", "LS", "S", "WF", "YO"),
    "wales": ("CF", "LD", "LL", "NP", "SA"),
    "scotland": (
        "AB",
        "DD",
        "DG",
        "EH",
        "FK",
        "G",
        "IV",
        "KA",
        "KW",
        "KY",
        "ML",
        "PA",
        "PH",
        "TD",
        "ZE",
    ),
}


class Installer(db.Model):
    __tablename__ = "installers"
    __table_args__ = (
        CheckConstraint("billing_anchor_day BETWEEN 1 AND 28", name="billing_anchor_day"),
        CheckConstraint("cycle_cap IS NULL OR cycle_cap >= 0", name="cycle_cap"),
        CheckConstraint("price_per_lead >= 0", name="price_per_lead"),
        CheckConstraint("link_version >= 1", name="link_version"),
        CheckConstraint(
            "return_limit_percent IS NULL OR return_limit_percent BETWEEN 0 AND 100",
            name="return_limit_percent",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200))
    delivery_email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True, index=True)
    service_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    cycle_cap: Mapped[int | None] = mapped_column()
    price_per_lead: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    billing_anchor_day: Mapped[int] = mapped_column(default=1)
    # Most returns per cycle, as a percentage of that cycle's deliveries; empty = no limit.
    return_limit_percent: Mapped[int | None] = mapped_column()
    link_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Installer {self.id} {self.company_name}>"
