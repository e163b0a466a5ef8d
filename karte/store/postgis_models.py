"""The PostGIS tables: one GeoAlchemy2 model per karte layer, the layer catalogue and the access log.

Everything lives in the ``karte`` schema. Spatial columns are ``geom`` in EPSG:6678 with a GiST
index each. Columns a written frame has beyond its model go to the ``extra`` JSONB column (typed
through :class:`LayerCatalog`), and layers that are not karte layers at all go to
:class:`ExtraLayer`, so any frame round-trips. Personal tables (register, cooperators,
supporter_decisions) carry the row-level-security columns (``district_code``, the register's
``consent``) and the optimistic-locking columns (``version``, ``updated_at``, ``updated_by``);
personal rows never go to ``extra_layers`` (it has no row-level security; a check constraint
refuses them).

The schema itself is created by the Alembic migrations in ``karte/store/migrations``; these models
describe it for the store and are checked against the migrated database by the tests.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    Sequence,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "karte"
SRID = 6678
#: Store-managed columns of personal tables (not part of a layer's frame unless asked for).
SYSTEM_COLUMNS = ("version", "updated_at", "updated_by")
#: Row versions come from one sequence: a replaced or edited row never gets an old number back.
ROW_VERSION = Sequence("row_version", schema=SCHEMA)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


def _fid() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)


def _geom(kind: str):
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=False), nullable=True)


def _gist(table: str) -> Index:
    return Index(f"ix_{table}_geom", "geom", postgresql_using="gist")


def _district(table: str) -> Index:
    return Index(f"ix_{table}_district_code", "district_code")


class LayerTable:
    """Columns every layer table has: ``fid`` (row order) and ``extra`` (unmodelled columns)."""

    fid: Mapped[int] = _fid()
    extra: Mapped[dict | None] = mapped_column(JSONB)


class Personal:
    """Optimistic locking: ``version`` changes on every insert and update (trigger)."""

    #: The id column rows are edited by.
    __key__: str
    version: Mapped[int] = mapped_column(BigInteger, ROW_VERSION, nullable=False,
                                         server_default=ROW_VERSION.next_value())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=text("now()"))
    updated_by: Mapped[str | None] = mapped_column(Text)


class SmallArea(LayerTable, Base):
    """町丁・字 with statistics and their district."""

    __tablename__ = "small_areas"
    __table_args__ = (_gist(__tablename__), _district(__tablename__))
    key_code: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    fullname: Mapped[str | None] = mapped_column(Text)
    population: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int | None] = mapped_column(Integer)
    concealed: Mapped[bool | None] = mapped_column(Boolean)
    age_0_14: Mapped[int | None] = mapped_column(Integer)
    age_15_64: Mapped[int | None] = mapped_column(Integer)
    age_65_74: Mapped[int | None] = mapped_column(Integer)
    age_75_plus: Mapped[int | None] = mapped_column(Integer)
    elderly_alone: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[int | None] = mapped_column(Integer)
    synthetic_age: Mapped[bool | None] = mapped_column(Boolean)
    district_code: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class District(LayerTable, Base):
    """地区社協 areas."""

    __tablename__ = "districts"
    __table_args__ = (_gist(__tablename__), _district(__tablename__))
    district_code: Mapped[str | None] = mapped_column(Text)
    district_name: Mapped[str | None] = mapped_column(Text)
    small_areas: Mapped[int | None] = mapped_column(Integer)
    geom = _geom("MULTIPOLYGON")


class DistrictMap(LayerTable, Base):
    """key_code -> district, as read."""

    __tablename__ = "district_map"
    key_code: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    district_name: Mapped[str | None] = mapped_column(Text)


class Register(Personal, LayerTable, Base):
    """要支援者名簿 (personal data: row-level security, audited reads)."""

    __tablename__ = "register"
    __key__ = "person_id"
    __table_args__ = (_gist(__tablename__), _district(__tablename__),
                      Index("ux_register_person_id", "person_id", unique=True))
    person_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    kana: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    location_precision: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[str | None] = mapped_column(Text)
    care_level: Mapped[str | None] = mapped_column(Text)
    disability_kind: Mapped[str | None] = mapped_column(Text)
    disability_grade: Mapped[str | None] = mapped_column(Text)
    elderly_only_household: Mapped[bool | None] = mapped_column(Boolean)
    intractable_disease: Mapped[bool | None] = mapped_column(Boolean)
    infant: Mapped[bool | None] = mapped_column(Boolean)
    medical_devices: Mapped[str | None] = mapped_column(Text)
    mobility: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[str | None] = mapped_column(Text)
    consent_date: Mapped[str | None] = mapped_column(Text)
    supporter_ids: Mapped[str | None] = mapped_column(Text)
    plan_status: Mapped[str | None] = mapped_column(Text)
    shelter_id: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    key_code: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class Cooperator(Personal, LayerTable, Base):
    """共助協力者 (personal contacts: row-level security, audited reads)."""

    __tablename__ = "cooperators"
    __key__ = "cooperator_id"
    __table_args__ = (_gist(__tablename__), _district(__tablename__),
                      Index("ux_cooperators_cooperator_id", "cooperator_id", unique=True))
    cooperator_id: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    help_kinds: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None] = mapped_column(Integer)
    location_precision: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class Service(LayerTable, Base):
    """共助サービス."""

    __tablename__ = "services"
    __table_args__ = (_gist(__tablename__), _district(__tablename__))
    service_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    operator: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    location_precision: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class Shelter(LayerTable, Base):
    """指定避難所 (GSI)."""

    __tablename__ = "shelters"
    __table_args__ = (_gist(__tablename__),)
    shelter_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    welfare: Mapped[bool | None] = mapped_column(Boolean)
    accepts: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class EmergencySite(LayerTable, Base):
    """指定緊急避難場所 (GSI)."""

    __tablename__ = "emergency_sites"
    __table_args__ = (_gist(__tablename__),)
    site_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    hazard_flood: Mapped[bool | None] = mapped_column(Boolean)
    hazard_landslide: Mapped[bool | None] = mapped_column(Boolean)
    hazard_storm_surge: Mapped[bool | None] = mapped_column(Boolean)
    hazard_earthquake: Mapped[bool | None] = mapped_column(Boolean)
    hazard_tsunami: Mapped[bool | None] = mapped_column(Boolean)
    hazard_fire: Mapped[bool | None] = mapped_column(Boolean)
    hazard_inland_flood: Mapped[bool | None] = mapped_column(Boolean)
    hazard_volcano: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class SupporterDecision(Personal, LayerTable, Base):
    """確認 / 見送り of coordinators on supporter suggestions (:mod:`karte.outreach`): who is to
    support whom, by id (personal data: row-level security by district, audited reads)."""

    __tablename__ = "supporter_decisions"
    __key__ = "decision_id"
    __table_args__ = (_district(__tablename__),
                      Index("ux_supporter_decisions_decision_id", "decision_id", unique=True))
    decision_id: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[str | None] = mapped_column(Text)
    cooperator_id: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(Text)
    distance_m: Mapped[float | None] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[str | None] = mapped_column(Text)


class Karte(LayerTable, Base):
    """The assembled karte of each district (JSON kept as text, byte for byte)."""

    __tablename__ = "kartes"
    district_code: Mapped[str | None] = mapped_column(Text)
    karte_json: Mapped[str | None] = mapped_column(Text)


class Meta(LayerTable, Base):
    """key/value: data date, fiscal year, synthetic flags."""

    __tablename__ = "meta"
    key: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)


class ExtraLayer(Base):
    """Rows of layers that are not karte layers (never personal: no row-level security here, so
    a check constraint refuses the names of the personal layers): attributes in JSONB."""

    __tablename__ = "extra_layers"
    __table_args__ = (_gist(__tablename__), Index("ix_extra_layers_layer", "layer"),
                      CheckConstraint("layer NOT IN ('register', 'cooperators', 'supporter_decisions')",
                                      name="ck_extra_layers_not_personal"))
    fid: Mapped[int] = _fid()
    layer: Mapped[str] = mapped_column(Text, nullable=False)
    attrs: Mapped[dict | None] = mapped_column(JSONB)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=True)


class LayerCatalog(Base):
    """Which layers exist, with their columns (name and type, in order) and geometry column."""

    __tablename__ = "layer_catalog"
    layer: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, Identity(), nullable=False)
    columns: Mapped[list] = mapped_column(JSONB, nullable=False)
    geometry: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                    server_default=text("now()"))


class AuditLog(Base):
    """Append-only access log of personal rows: who, when, which route, layer, district, rows.

    Application roles may insert (as themselves, at the current time) but never change or delete.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                            server_default=text("now()"))
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[str] = mapped_column(Text, nullable=False,
                                       server_default=text("replace(CURRENT_USER::text, 'karte_', '')"))
    route: Mapped[str] = mapped_column(Text, nullable=False)
    layer: Mapped[str] = mapped_column(Text, nullable=False)
    district: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    db_user: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("SESSION_USER"))


#: Layer name -> model, for the karte layers (see :class:`karte.domain.schema.Layer`) and the outreach
#: decisions (:data:`karte.domain.schema.DECISIONS`).
LAYER_MODELS: dict[str, type[LayerTable]] = {
    m.__tablename__: m
    for m in (SmallArea, District, DistrictMap, Register, Cooperator, Service, Shelter, EmergencySite,
              Karte, Meta, SupporterDecision)
}
#: Tables holding personal data: row-level security, a role per access level, audited reads.
PERSONAL_MODELS = {name: m for name, m in LAYER_MODELS.items() if issubclass(m, Personal)}

_KIND = {Text: "text", Integer: "integer", BigInteger: "integer", Float: "float", Boolean: "boolean"}


def attribute_columns(model: type[LayerTable]) -> dict[str, str]:
    """The modelled attribute columns of a layer table and their kind (text, integer, float,
    boolean), in table order; without fid, extra, geom and the system columns."""
    skip = {"fid", "extra", "geom", *SYSTEM_COLUMNS}
    out = {}
    for col in model.__table__.columns:
        if col.name not in skip:
            out[col.name] = _KIND[type(col.type)]
    return out


def has_geometry(model) -> bool:
    return "geom" in model.__table__.columns
