"""Analysis parameters: one frozen object the CLI and the web pass to every analysis function.

Every distance here is a *walking* distance in metres: straight-line distance times
``detour_factor`` when no walking network is given, the network distance when one is (see
:mod:`gis.distance`). Winter (積雪期) shortens how far an elderly person walks: it scales the salon
walk and the walk to an emergency site by ``winter_factor``. It does not scale the supporter's
distance (a supporter is assumed to be able-bodied and the limit is about how quickly they arrive)
nor the welfare-shelter reach (people who need care are taken there, not expected to walk).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Hazard names of the emergency-site flags (columns ``hazard_<name>``): the hazard kinds of GSI's
#: designated emergency sites (指定緊急避難場所) data.
HAZARD_NAMES = ("flood", "landslide", "storm_surge", "earthquake", "tsunami", "fire", "inland_flood",
                "volcano")


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of the coverage, gap, suggestion and siting analyses.

    Attributes
    ----------
    detour_factor
        Walking distance ÷ straight-line distance when no network is supplied (default 1.3, a
        common figure for Japanese urban street grids).
    walk_m
        How far an elderly person walks to a salon (高齢者の徒歩圏), metres (default 500).
    winter
        Use the winter (snow) distances.
    winter_factor
        Multiplier applied in winter to ``walk_m`` and ``site_m`` (default 0.7: 500 m -> 350 m).
    supporter_max_m
        A supporter farther than this from the person is a gap (default 300 m).
    suggest_max_m
        Suggested supporters must be within this distance (default: ``supporter_max_m``, so a
        suggestion never creates a "supporter too far" gap).
    site_m
        Reach of an emergency site (指定緊急避難場所) on foot (default 1000 m).
    welfare_m
        Reach of a welfare shelter (福祉避難所) for people who need care (default 3000 m; they are
        transported, so winter does not shorten it).
    hazard
        The hazard whose emergency-site flag counts (``hazard_<name>``; default ``"earthquake"``).
    min_salon_per_month
        A salon counts for coverage when it meets at least this often (default 1.0 = monthly).
    mesh_level
        JIS regional mesh level of the population surface (default 6 = 1/8 mesh, about 125 m).
    """

    detour_factor: float = 1.3
    walk_m: float = 500.0
    winter: bool = False
    winter_factor: float = 0.7
    supporter_max_m: float = 300.0
    suggest_max_m: float | None = None
    site_m: float = 1000.0
    welfare_m: float = 3000.0
    hazard: str = "earthquake"
    min_salon_per_month: float = 1.0
    mesh_level: int = 6

    def __post_init__(self):
        problems = []
        for name in ("detour_factor", "walk_m", "winter_factor", "supporter_max_m", "site_m",
                     "welfare_m"):
            value = getattr(self, name)
            if not value > 0:
                problems.append(f"{name} should be > 0, got {value!r}")
        if self.detour_factor < 1:
            problems.append(f"detour_factor should be >= 1, got {self.detour_factor!r}")
        if not 0 < self.winter_factor <= 1:
            problems.append(f"winter_factor should be in (0, 1], got {self.winter_factor!r}")
        if self.suggest_max_m is not None and not self.suggest_max_m > 0:
            problems.append(f"suggest_max_m should be > 0 or None, got {self.suggest_max_m!r}")
        if self.hazard not in HAZARD_NAMES:
            problems.append(f"hazard should be one of {', '.join(HAZARD_NAMES)}, got {self.hazard!r}")
        if self.min_salon_per_month < 0:
            problems.append(f"min_salon_per_month should be >= 0, got {self.min_salon_per_month!r}")
        if self.mesh_level not in (3, 4, 5, 6):
            problems.append(f"mesh_level should be 3, 4, 5 or 6, got {self.mesh_level!r}")
        if problems:
            raise ValueError("invalid analysis parameters: " + "; ".join(problems))

    @property
    def salon_walk_m(self) -> float:
        """Walking distance to a salon that counts as covered (shortened in winter)."""
        return self.walk_m * (self.winter_factor if self.winter else 1.0)

    @property
    def site_walk_m(self) -> float:
        """Walking distance to an emergency site that counts as within reach (shortened in winter)."""
        return self.site_m * (self.winter_factor if self.winter else 1.0)

    @property
    def suggest_m(self) -> float:
        """Maximum distance of a suggested supporter."""
        return self.supporter_max_m if self.suggest_max_m is None else self.suggest_max_m
