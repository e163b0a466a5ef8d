"""Every copy of the register accounted for: the hand-out ledger of printed and exported copies.

災害対策基本法 第49条の13 binds whoever receives the support-needer register (避難行動要支援者名簿)
to secrecy, and 第49条の12 asks the city to make sure it does not leak: so every copy that leaves
karte must be known, and come back or be destroyed. A **copy** (複製) is one confidential or drill
sheet, one personal CSV, or one sealed shelter list; it carries a number (``K000012``) and the
version of the register it lists (:func:`karte.services.copies.listing_version`), printed on every
page with a QR code.

Two record layers, both personal and append-only (nothing is ever changed or deleted; PostGIS
grants no ``UPDATE`` or ``DELETE`` on them to any application role, migration 0009):

* ``copies``: one row per copy made: what it lists, who made it, for whom (a cooperator, a council,
  a shelter), why (平常時の提供, 訓練, 災害時), on which legal basis, and when it is due back;
* ``copy_events``: what happened to it later: handed over, returned, destroyed, a sealed list
  opened, the marks of a drill sheet entered. The ledger's state of a copy is derived from its
  events (:func:`state_of`), never stored.

Every row has ``municipality_code`` and ``district_code`` (row-level security: a district member
reads and writes their own district's rows only).
"""

from __future__ import annotations

from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec

COPIES = "copies"
EVENTS = "copy_events"

#: Who records copies and their events: everyone who may print a personal edition (a district
#: member only in their own district); sealed shelter lists are city staff's alone (the service and
#: the PostGIS policies check it).
WRITERS = ("city_staff", "coordinator", "district_member")


class CopyKind(StrEnum):
    """What a copy is."""

    CONFIDENTIAL = "confidential"          # 地区シート（取扱注意）
    DRILL = "drill"                        # 地区シート（訓練用）
    CSV_REGISTER = "csv_register"          # 要支援者名簿 CSV
    CSV_COOPERATORS = "csv_cooperators"    # 共助協力者名簿 CSV
    SEALED = "sealed"                      # 封印した避難所名簿（災害時のみ開封）

    @property
    def ja(self) -> str:
        return KIND_JA[self]


KIND_JA = {
    CopyKind.CONFIDENTIAL: "地区シート（取扱注意）",
    CopyKind.DRILL: "地区シート（訓練用）",
    CopyKind.CSV_REGISTER: "要支援者名簿CSV",
    CopyKind.CSV_COOPERATORS: "共助協力者名簿CSV",
    CopyKind.SEALED: "封印名簿（避難所）",
}


class HolderKind(StrEnum):
    """Whom a copy is for (提供先)."""

    COOPERATOR = "cooperator"  # 避難支援等関係者の個人（民生委員、町会役員、消防団員…）
    COUNCIL = "council"        # 団体（地区社協、町会・自主防災組織）
    SHELTER = "shelter"        # 避難所（封印名簿の保管先）
    OFFICE = "office"          # 市・社協の職員（作成者の手元）

    @property
    def ja(self) -> str:
        return HOLDER_JA[self]


HOLDER_JA = {
    HolderKind.COOPERATOR: "支援者（個人）",
    HolderKind.COUNCIL: "団体（地区社協・町会・自主防災組織）",
    HolderKind.SHELTER: "避難所",
    HolderKind.OFFICE: "市・社協（作成者の手元）",
}
#: The short labels of the holder kinds (tables).
HOLDER_SHORT = {HolderKind.COOPERATOR: "支援者", HolderKind.COUNCIL: "団体", HolderKind.SHELTER: "避難所",
                HolderKind.OFFICE: "手元"}


class Purpose(StrEnum):
    """Why a copy was made (提供の目的)."""

    NORMAL = "normal"      # 平常時の提供
    DRILL = "drill"        # 訓練
    DISASTER = "disaster"  # 災害時

    @property
    def ja(self) -> str:
        return PURPOSE_JA[self]


PURPOSE_JA = {Purpose.NORMAL: "平常時の提供", Purpose.DRILL: "訓練", Purpose.DISASTER: "災害時"}


class Basis(StrEnum):
    """The legal basis of a copy (提供の根拠, 災害対策基本法 第49条の11)."""

    CONSENT = "consent"      # 本人の同意（第2項）
    ORDINANCE = "ordinance"  # 条例の定め（第2項ただし書）
    DISASTER = "disaster"    # 災害時の提供（第3項：同意を要しない）
    INTERNAL = "internal"    # 市の内部での利用（第1項）

    @property
    def ja(self) -> str:
        return BASIS_JA[self]


BASIS_JA = {
    Basis.CONSENT: "本人の同意（第49条の11第2項）",
    Basis.ORDINANCE: "条例の定め（第49条の11第2項）",
    Basis.DISASTER: "災害時の提供（第49条の11第3項）",
    Basis.INTERNAL: "市の内部利用（第49条の11第1項）",
}
#: The short labels of the bases (tables).
BASIS_SHORT = {Basis.CONSENT: "同意", Basis.ORDINANCE: "条例", Basis.DISASTER: "災害時",
               Basis.INTERNAL: "内部利用"}


class Scope(StrEnum):
    """Which register rows a copy lists."""

    SHAREABLE = "shareable"  # 同意・条例による推定同意の方のみ（平常時に提供できる範囲）
    ALL = "all"              # 同意のない方を含む全員（市の内部・封印名簿）


class Event(StrEnum):
    """What can happen to a copy after it was made (``copy_events.event``)."""

    HANDED_OVER = "handed_over"  # 手渡し（提供先が受け取った）
    RETURNED = "returned"        # 回収（返却を受けた）
    DESTROYED = "destroyed"      # 廃棄（シュレッダー・溶解・ファイル削除）
    OPENED = "opened"            # 開封（封印名簿：災害時）
    MARKED = "marked"            # 訓練の記入をデータに入力（訓練用シート）
    VOIDED = "voided"            # 無効（作成に失敗し、印刷物・ファイルはない）

    @property
    def ja(self) -> str:
        return EVENT_JA[self]


EVENT_JA = {
    Event.HANDED_OVER: "手渡し", Event.RETURNED: "回収", Event.DESTROYED: "廃棄",
    Event.OPENED: "開封", Event.MARKED: "訓練記入の入力", Event.VOIDED: "無効（作成されず）",
}


class State(StrEnum):
    """Where a copy is, derived from its events (:func:`state_of`)."""

    MADE = "made"            # 作成済み・未配布（作成者の手元）
    OUT = "out"              # 配布中
    OPENED = "opened"        # 開封済み（封印名簿、配布中）
    RETURNED = "returned"    # 回収済み
    DESTROYED = "destroyed"  # 廃棄済み
    VOID = "void"            # 無効

    @property
    def ja(self) -> str:
        return STATE_JA[self]

    @property
    def outstanding(self) -> bool:
        """Is the copy still somewhere out there (not returned, destroyed or void)?"""
        return self in (State.MADE, State.OUT, State.OPENED)


STATE_JA = {
    State.MADE: "作成済み（未配布）", State.OUT: "配布中", State.OPENED: "開封済み（配布中）",
    State.RETURNED: "回収済み", State.DESTROYED: "廃棄済み", State.VOID: "無効",
}

#: Which events may follow in which state (anything else is refused with a clear message).
ALLOWED = {
    State.MADE: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.OPENED, Event.MARKED,
                 Event.VOIDED},
    State.OUT: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.OPENED, Event.MARKED},
    State.OPENED: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.MARKED},
    State.RETURNED: {Event.DESTROYED, Event.MARKED},
    State.DESTROYED: set(),
    State.VOID: set(),
}


def next_state(state: State, event: Event) -> State:
    """The state after ``event`` (the caller checked :data:`ALLOWED`)."""
    return {
        Event.HANDED_OVER: State.OPENED if state is State.OPENED else State.OUT,
        Event.RETURNED: State.RETURNED,
        Event.DESTROYED: State.DESTROYED,
        Event.OPENED: State.OPENED,
        Event.MARKED: state,
        Event.VOIDED: State.VOID,
    }[event]


def state_of(events) -> State:
    """The state of a copy after its ``events`` (``Event`` values, oldest first). An event the
    state does not allow (two people recording one return at once) leaves the state as it was."""
    state = State.MADE
    for event in events:
        event = Event(event)
        if event in ALLOWED[state]:
            state = next_state(state, event)
    return state


#: The columns of ``copies``, in order (the PostGIS table of migration 0009 has exactly these).
COPY_COLUMNS = (
    Column("copy_id"), Column(MUNICIPALITY), Column("district_code"),
    Column("kind"),                  # CopyKind
    Column("shelter_id"),            # sealed lists: the shelter (共通ID)
    Column("layers"),                # the layers it lists, ";"-joined (register;cooperators)
    Column("scope"),                 # Scope: which register rows
    Column("persons", "integer"),    # register rows listed
    Column("rows", "integer"),       # rows listed in all (register and roster)
    Column("person_ids"),            # the listed register ids, ";"-joined (drill marks; never shown)
    Column("register_version"),      # the version of what it lists (listing_version)
    Column("holder_kind"),           # HolderKind
    Column("holder_name"),           # the holder as written by the maker (a person, a council, a shelter)
    Column("holder_ref"),            # cooperator_id or shelter_id when known
    Column("purpose"),               # Purpose
    Column("basis"),                 # Basis values, ";"-joined
    Column("due_back"),              # ISO date (JST) by which it should be back
    Column("made_by"),               # the acting user
    Column("made_at"),               # UTC, ISO with seconds
    Column("made_via"),              # the route (cli:sheets, web:copies_print…)
    Column("file"),                  # the file name written or sent
    Column("paper"),                 # A4 / A3 (sheets)
    Column("note"),
)

#: The columns of ``copy_events``, in order.
EVENT_COLUMNS = (
    Column("event_id"), Column("copy_id"), Column(MUNICIPALITY), Column("district_code"),
    Column("event"),                 # Event
    Column("at"),                    # UTC, ISO with seconds: when it happened
    Column("recorded_by"),           # the acting user
    Column("person"),                # who received / returned / destroyed / opened it (a name)
    Column("holder_kind"),           # hand-over: the new holder's kind
    Column("due_back"),              # hand-over: a new due date
    Column("note"),
    Column("via"),                   # the route (cli:copies, web:copies_event…)
)

#: Layers a whole-layer write (an import, a restore: ``karte import store``) must leave alone: the
#: ledger is append-only, and PostGIS refuses the ``DELETE`` a replacement starts with.
NOT_REPLACED = frozenset({COPIES, EVENTS})

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(COPIES, "copy_id", "名簿の複製（配布記録）", personal=True, records=True, id_prefix="K",
              writers=WRITERS, updaters=(), columns=COPY_COLUMNS),
    LayerSpec(EVENTS, "event_id", "名簿の複製の受け渡し・回収・廃棄", personal=True, records=True,
              id_prefix="KE", writers=WRITERS, updaters=(), columns=EVENT_COLUMNS),
)
