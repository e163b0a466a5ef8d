"""The layer registry: every layer a karte store holds, and what each store must know about it.

A layer is one GeoPackage layer or one PostGIS table. Two kinds:

* **built** layers are written whole (:meth:`karte.store.base.Store.write`) by the build, an
  import or a restore: boundaries, statistics, the register as the city hands it over;
* **record** layers (:attr:`LayerSpec.records`) are written a row at a time by the people who
  use karte (:meth:`~karte.store.base.Store.append`, ``update``, ``delete``), each write by the
  acting user and audited in the same transaction. Their full schema is declared here, so a
  store can create the empty layer on the first append; ids come from the store.

``personal`` layers hold personal data: row-level security on PostGIS, the same rules in the
application for the GeoPackage (:meth:`karte.domain.access.Access.filter_rows`), every read and
write in the access log, never served to the public. ``snapshot`` layers are read by the build
snapshot (:mod:`karte.snapshot`): any write to them changes the store's stamp
(:meth:`~karte.store.base.Store.stamp`), so every process recomputes what it derived from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from karte.domain.schema import VOCABULARY

#: The column that says which municipality (JIS code, ``02201``) a row belongs to: every layer
#: has it; district codes are unique within a municipality.
MUNICIPALITY = "municipality_code"

#: List-valued fields (``supporter_ids``, ``help_kinds``) are stored as text joined by this.
LIST_SEPARATOR = VOCABULARY.list_separator


def split_list(value) -> list[str]:
    """``"a;b"`` -> ``["a", "b"]``; empty or null -> ``[]``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return []
    return [v for v in str(value).split(LIST_SEPARATOR) if v]


def join_list(values) -> str:
    """``["a", "b"]`` -> ``"a;b"`` (the stored form of a list-valued field)."""
    return LIST_SEPARATOR.join(str(v) for v in values)


class Layer(StrEnum):
    """Layers of the karte store (GeoPackage layers / PostGIS tables)."""

    SMALL_AREAS = "small_areas"          # 町丁・字 with statistics and their district
    DISTRICTS = "districts"              # 地区社協 areas (polygons)
    DISTRICT_MAP = "district_map"        # key_code -> district (attribute table)
    REGISTER = "register"                # 要支援者名簿 (personal data)
    COOPERATORS = "cooperators"          # 共助協力者 (personal contacts)
    SERVICES = "services"                # 共助サービス
    SHELTERS = "shelters"                # 指定避難所 (GSI)
    EMERGENCY_SITES = "emergency_sites"  # 指定緊急避難場所 (GSI)
    KARTES = "kartes"                    # assembled karte per district (JSON text)
    META = "meta"                        # key/value: data date, fiscal year, synthetic flags
    DECISIONS = "supporter_decisions"    # 避難支援者の候補への確認・見送り (personal records)


#: Column kinds a store keeps (GeoPackage and PostGIS alike).
KINDS = ("text", "integer", "float", "boolean")


@dataclass(frozen=True)
class Column:
    """One attribute column of a record layer: name and kind (one of :data:`KINDS`)."""

    name: str
    kind: str = "text"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: kind should be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class LayerSpec:
    """What every store knows about one layer.

    Attributes
    ----------
    name
        The layer (table) name.
    key
        The column that identifies a row (unique), or None for a layer without one.
    title_ja
        The layer's name as users read it.
    personal
        Personal data: protected, audited, never public.
    records
        Written row by row by people (append / update / delete); ``columns`` is its schema.
    snapshot
        Read by the build snapshot: a write to it changes the store's stamp.
    geometry
        ``"Point"`` or ``"MultiPolygon"`` (EPSG:6678), or None for an attribute table.
    columns
        The attribute columns of a record layer, in order (key first); empty for built layers,
        whose columns are whatever the build writes.
    id_prefix
        Ids the store assigns to appended rows without one: the prefix and a number from the
        database, zero-padded to six digits (``D000001``).
    district_column
        The column row-level security reads the district from (None: no district rule).
        Every layer also has :data:`MUNICIPALITY`, which row-level security reads the
        municipality from.
    writers
        Access levels that may add and delete rows (:meth:`karte.domain.access.Access.may_write`);
        district members only in their own district. Whole-layer replacement of a personal
        layer is city staff's alone.
    updaters
        Access levels that may change existing rows (default: the ``writers``): coordinators
        correct the city's register and roster (a supporter confirmed), they do not add or
        remove its people.
    """

    name: str
    key: str | None
    title_ja: str
    personal: bool = False
    records: bool = False
    snapshot: bool = False
    geometry: str | None = None
    columns: tuple[Column, ...] = ()
    id_prefix: str = ""
    district_column: str | None = "district_code"
    writers: tuple[str, ...] = ("city_staff",)
    updaters: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.records and (not self.columns or self.columns[0].name != self.key or not self.id_prefix):
            raise ValueError(f"record layer {self.name}: columns must start with the key "
                             f"{self.key!r} and an id_prefix is needed")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def new_id(self, number: int) -> str:
        """The id the store gives the ``number``-th appended row."""
        return f"{self.id_prefix}{number:06d}"


#: Columns of the built personal and resource layers, in order (geometry is added by the store).
REGISTER_COLUMNS = (
    "person_id", "municipality_code", "name", "kana", "address", "location_precision", "birth_date",
    "care_level", "disability_kind", "disability_grade", "elderly_only_household",
    "intractable_disease", "infant", "medical_devices", "mobility",
    "consent", "consent_date", "supporter_ids", "plan_status", "shelter_id",
    "district_code", "key_code",
)
COOPERATOR_COLUMNS = (
    "cooperator_id", "municipality_code", "role", "name", "phone", "district_code", "help_kinds",
    "capacity",
)
SERVICE_COLUMNS = (
    "service_id", "municipality_code", "kind", "name", "operator", "venue", "frequency", "schedule",
    "contact", "target", "district_code",
)

LAYERS: dict[str, LayerSpec] = {s.name: s for s in (
    LayerSpec(Layer.SMALL_AREAS, "key_code", "町丁・字", snapshot=True, geometry="MultiPolygon"),
    LayerSpec(Layer.DISTRICTS, "district_code", "地区", snapshot=True, geometry="MultiPolygon"),
    LayerSpec(Layer.DISTRICT_MAP, "key_code", "町丁・字と地区の対応"),
    LayerSpec(Layer.REGISTER, "person_id", "要支援者名簿", personal=True, snapshot=True,
              geometry="Point", updaters=("city_staff", "coordinator")),
    LayerSpec(Layer.COOPERATORS, "cooperator_id", "共助協力者", personal=True, snapshot=True,
              geometry="Point", updaters=("city_staff", "coordinator")),
    LayerSpec(Layer.SERVICES, "service_id", "共助サービス", snapshot=True, geometry="Point"),
    LayerSpec(Layer.SHELTERS, "shelter_id", "指定避難所", snapshot=True, geometry="Point",
              district_column=None),
    LayerSpec(Layer.EMERGENCY_SITES, "site_id", "指定緊急避難場所", snapshot=True, geometry="Point",
              district_column=None),
    LayerSpec(Layer.KARTES, "district_code", "地区カルテ", snapshot=True),
    LayerSpec(Layer.META, "key", "メタ情報", snapshot=True, district_column=None),
    LayerSpec(Layer.DECISIONS, "decision_id", "避難支援者の候補への決定", personal=True, records=True,
              id_prefix="D", writers=("city_staff", "coordinator"), columns=(
                  Column("decision_id"), Column("person_id"), Column("cooperator_id"),
                  Column(MUNICIPALITY), Column("district_code"), Column("decision"),
                  Column("distance_m", "float"), Column("decided_by"), Column("decided_at"))),
)}

# The record layers of each part of the product live in their own module (one per topic), added
# here so the one registry holds them all. Each module defines ``LAYERS`` (a tuple of LayerSpec).
from karte.domain import care, copies, drills, history, outreach, security, supporters  # noqa: E402 (needs LayerSpec)

for _topic in (history, care, supporters, drills, copies, security, outreach):
    for _entry in _topic.LAYERS:
        if _entry.name in LAYERS:
            raise ValueError(f"layer {_entry.name} is defined twice")
        LAYERS[_entry.name] = _entry

#: Layers holding personal data: protected, audited, never public.
PERSONAL_LAYERS = frozenset(name for name, spec in LAYERS.items() if spec.personal)
#: Layers the build snapshot reads: writing any of them changes the store's stamp.
SNAPSHOT_LAYERS = frozenset(name for name, spec in LAYERS.items() if spec.snapshot)
#: Layers written row by row.
RECORD_LAYERS = frozenset(name for name, spec in LAYERS.items() if spec.records)


def spec(layer: str) -> LayerSpec | None:
    """The registry entry of ``layer`` (None for a layer karte does not define, e.g. a user's own)."""
    return LAYERS.get(str(layer))
