"""The pages' navigation: the site menu and the links a district page offers, one registry each.

An entry names a route (by its FastAPI name) and who sees it; it is shown only once the route
exists, so a topic adds its page by adding the route with the name listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.routing import NoMatchFound

from karte.domain.access import Access, Level

_PERSONAL = frozenset({Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER})
_PLANNERS = frozenset({Level.CITY_STAFF, Level.COORDINATOR})


@dataclass(frozen=True)
class Link:
    """A page link: the route's name, its label, who sees it (None: everyone)."""

    route: str
    label: str
    levels: frozenset[Level] | None = None

    def shown_to(self, access: Access) -> bool:
        return self.levels is None or access.level in self.levels


#: The site menu, in order (全体図 and API are always there).
MENU = (
    Link("outreach_page", "アウトリーチ計画", _PLANNERS),
    Link("plan_page", "計画・指標"),
    Link("care_page", "見守り・セーフティネット", _PERSONAL),
    Link("supporters_page", "地域福祉サポーター"),
    Link("supporters_snow_page", "雪かきの調整", _PLANNERS),
    Link("drills_page", "訓練・災害時", _PERSONAL),
    Link("copies_page", "名簿の配布記録", _PERSONAL),
)

#: Links of a district page to its district's other pages (routes with a ``code`` parameter).
DISTRICT = (
    Link("district_plan_page", "計画・指標（地区）"),
    Link("district_care_page", "見守り・セーフティネット（地区）", _PERSONAL),
    Link("district_drills_page", "個別避難計画・訓練（地区）", _PERSONAL),
    Link("district_supporters_page", "地域福祉サポーター（地区）"),
)


def menu(app: FastAPI, access: Access) -> list[tuple[str, str]]:
    """(path, label) of the menu entries this viewer sees whose route exists."""
    return [(path, link.label) for link in MENU if link.shown_to(access)
            and (path := _path(app, link.route)) is not None]


def district_links(app: FastAPI, access: Access, code: str) -> list[tuple[str, str]]:
    """(path, label) of the district page's links this viewer sees whose route exists."""
    return [(path, link.label) for link in DISTRICT if link.shown_to(access)
            and (path := _path(app, link.route, code=code)) is not None]


#: Paths remembered per app (``app.state``), at most this many (district codes come from URLs).
_REMEMBERED = 4096


def _path(app: FastAPI, route: str, code: str | None = None) -> str | None:
    """The route's path, None when the app has no such route. Remembered per app: the routes are
    fixed once the app is built, and ``url_path_for`` walks every route (and raises on a miss),
    which cost a district page about a fifth of its time."""
    paths = getattr(app.state, "nav_paths", None)
    if paths is None:
        paths = app.state.nav_paths = {}
    key = (route, code)
    if key not in paths:
        try:
            path = str(app.url_path_for(route) if code is None else app.url_path_for(route, code=code))
        except NoMatchFound:
            path = None
        if len(paths) >= _REMEMBERED:
            return path
        paths[key] = path
    return paths[key]
