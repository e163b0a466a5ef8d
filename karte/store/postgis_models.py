"""The PostGIS tables: one GeoAlchemy2 model per karte layer, the layer catalogue, the access log
and the snapshot stamp.

Everything lives in the ``karte`` schema. Spatial columns are ``geom`` in EPSG:6678 with a GiST
index each. Every layer table (and ``extra_layers``) has ``municipality_code`` (the
municipality's JIS code, :data:`karte.domain.layers.MUNICIPALITY`) with a B-tree index; its
default is the transaction's ``karte.municipality`` setting, the acting user's (migration 0004).
Columns a written frame has beyond its model go to the ``extra`` JSONB column (typed through
:class:`LayerCatalog`), and layers that are not karte layers at all go to :class:`ExtraLayer`, so
any frame round-trips. Personal tables (register, cooperators, supporter_decisions) carry the
row-level-security columns (``municipality_code``, ``district_code``, the register's
``consent``), their keys unique within a municipality; they and every record layer carry the
optimistic-locking columns (``version``, ``updated_at``, ``updated_by``: :class:`Versioned`).
Personal rows never go to ``extra_layers`` (it has no row-level security; a check constraint
refuses them).

Built layers are modelled by hand (their columns are whatever the build writes, modelled where
known); record layers (:attr:`karte.domain.layers.LayerSpec.records`) are modelled from their
registry entry, so a new one needs its entry and its migration, no code here.

The schema itself is created by the Alembic migrations in ``karte/store/migrations``; these models
describe it for the store and are checked against the migrated database by the tests. Triggers,
functions, sequences other than ``row_version``, grants and policies are the migrations' alone.
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

from karte.domain.layers import LAYERS, MUNICIPALITY, LayerSpec
from karte.store.base import AUDIT_ACTIONS, SYSTEM_COLUMNS

SCHEMA = "karte"
SRID = 6678
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


def _district(table: str, column: str = "district_code") -> Index:
    return Index(f"ix_{table}_{column}", column)


def _municipality(table: str) -> Index:
    return _district(table, MUNICIPALITY)


def _unique_key(table: str, key: str) -> Index:
    """Keys of personal and record layers are unique within a municipality."""
    return Index(f"ux_{table}_{MUNICIPALITY}_{key}", MUNICIPALITY, key, unique=True)


def _municipality_code():
    """The row's municipality; a row inserted without one gets the acting user's."""
    return mapped_column(Text, server_default=text("nullif(current_setting('karte.municipality', true), '')"))


class LayerTable:
    """Columns every layer table has: ``fid`` (row order), ``extra`` (unmodelled columns) and
    ``municipality_code``."""

    fid: Mapped[int] = _fid()
    extra: Mapped[dict | None] = mapped_column(JSONB)
    municipality_code: Mapped[str | None] = _municipality_code()


class Versioned:
    """Rows edited one at a time: ``version`` changes on every insert and update (trigger), for
    optimistic locking; ``updated_at`` and ``updated_by`` say when and by whom."""

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
    __table_args__ = (_gist(__tablename__), _district(__tablename__), _municipality(__tablename__))
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
    __table_args__ = (_gist(__tablename__), _district(__tablename__), _municipality(__tablename__))
    district_code: Mapped[str | None] = mapped_column(Text)
    district_name: Mapped[str | None] = mapped_column(Text)
    small_areas: Mapped[int | None] = mapped_column(Integer)
    geom = _geom("MULTIPOLYGON")


class DistrictMap(LayerTable, Base):
    """key_code -> district, as read."""

    __tablename__ = "district_map"
    __table_args__ = (_municipality(__tablename__),)
    key_code: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    district_name: Mapped[str | None] = mapped_column(Text)


class Register(Versioned, LayerTable, Base):
    """要支援者名簿 (personal data: row-level security, audited reads)."""

    __tablename__ = "register"
    __key__ = "person_id"
    __table_args__ = (_gist(__tablename__), _district(__tablename__), _municipality(__tablename__),
                      _unique_key(__tablename__, __key__))
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


class Cooperator(Versioned, LayerTable, Base):
    """共助協力者 (personal contacts: row-level security, audited reads)."""

    __tablename__ = "cooperators"
    __key__ = "cooperator_id"
    __table_args__ = (_gist(__tablename__), _district(__tablename__), _municipality(__tablename__),
                      _unique_key(__tablename__, __key__))
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
    __table_args__ = (_gist(__tablename__), _district(__tablename__), _municipality(__tablename__))
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
    __table_args__ = (_gist(__tablename__), _municipality(__tablename__))
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
    __table_args__ = (_gist(__tablename__), _municipality(__tablename__))
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


class Karte(LayerTable, Base):
    """The assembled karte of each district (JSON kept as text, byte for byte)."""

    __tablename__ = "kartes"
    __table_args__ = (_municipality(__tablename__),)
    district_code: Mapped[str | None] = mapped_column(Text)
    karte_json: Mapped[str | None] = mapped_column(Text)


class Meta(LayerTable, Base):
    """key/value: data date, fiscal year, synthetic flags."""

    __tablename__ = "meta"
    __table_args__ = (_municipality(__tablename__),)
    key: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)


class ExtraLayer(Base):
    """Rows of layers that are not karte layers (never personal: no row-level security here, so
    a check constraint refuses the names of the personal layers): attributes in JSONB."""

    __tablename__ = "extra_layers"
    __table_args__ = (_gist(__tablename__), Index("ix_extra_layers_layer", "layer"),
                      _municipality(__tablename__),
                      CheckConstraint("layer NOT IN ('register', 'cooperators', 'supporter_decisions')",
                                      name="ck_extra_layers_not_personal"))
    fid: Mapped[int] = _fid()
    layer: Mapped[str] = mapped_column(Text, nullable=False)
    attrs: Mapped[dict | None] = mapped_column(JSONB)
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=True)
    municipality_code: Mapped[str | None] = _municipality_code()


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

    Application roles may insert (as themselves, at the current time, at their own level) but never
    change or delete. ``action`` is one of :data:`karte.store.base.AUDIT_ACTIONS`.
    """

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint("action IN ({})".format(", ".join(f"'{a}'" for a in AUDIT_ACTIONS)),
                                      name="ck_audit_log_action"),)
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
    action: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'read'"))


class SnapshotStamp(Base):
    """One row: the id of the last transaction that wrote a layer the build snapshot reads (set by
    a trigger on each of them; :meth:`karte.store.postgis.PostGISStore.stamp`). No row: nothing
    written yet."""

    __tablename__ = "snapshot_stamp"
    __table_args__ = (CheckConstraint("id", name="ck_snapshot_stamp_one_row"),)
    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    stamp: Mapped[int] = mapped_column(BigInteger, nullable=False)


_SA_TYPE = {"text": Text, "integer": BigInteger, "float": Float, "boolean": Boolean}


def _record_model(entry: LayerSpec) -> type[LayerTable]:
    """The table of a record layer, from its registry entry: the declared columns, the system
    columns, a unique index on the municipality and the key, an index on the municipality and on
    the district column, a GiST index on the geometry (the migration that creates the table follows
    the same plan)."""
    name = str(entry.name)
    attrs: dict[str, object] = {
        "__tablename__": name, "__key__": entry.key,
        "__doc__": f"{entry.title_ja}: a record layer, written row by row.",
    }
    args = [_unique_key(name, entry.key), _municipality(name)]
    if entry.district_column:
        args.append(_district(name, entry.district_column))
    for column in entry.columns:
        if column.name != MUNICIPALITY:  # every layer table has it (LayerTable)
            attrs[column.name] = mapped_column(_SA_TYPE[column.kind])
    if entry.geometry:
        attrs["geom"] = _geom(entry.geometry.upper())
        args.append(_gist(name))
    attrs["__table_args__"] = tuple(args)
    class_name = "".join(part.title() for part in name.split("_"))
    return type(class_name, (Versioned, LayerTable, Base), attrs)


#: Layer name -> model, for the built karte layers (see :class:`karte.domain.layers.Layer`) and the
#: record layers (:data:`karte.domain.layers.RECORD_LAYERS`).
LAYER_MODELS: dict[str, type[LayerTable]] = {
    **{m.__tablename__: m for m in (SmallArea, District, DistrictMap, Register, Cooperator, Service,
                                     Shelter, EmergencySite, Karte, Meta)},
    **{str(name): _record_model(entry) for name, entry in LAYERS.items() if entry.records},
}
#: Tables holding personal data: row-level security, a role per access level, audited reads.
PERSONAL_MODELS = {name: m for name, m in LAYER_MODELS.items() if name in LAYERS and LAYERS[name].personal}

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


def versioned(model) -> bool:
    """Does the table keep row versions (:class:`Versioned`), so rows can be written one at a time?"""
    return model is not None and issubclass(model, Versioned)


def id_sequence(entry: LayerSpec) -> str:
    """The sequence (owned by the key column) whose numbers become the ids of a record layer's
    appended rows (:meth:`LayerSpec.new_id`)."""
    return f"{SCHEMA}.{entry.name}_{entry.key}_seq"
