"""The census (国勢調査) behind the base statistics: honest city totals and a new census in one command.

* :mod:`.reconcile` compares the city total karte counts (the sum of its small areas) with the
  official census total and says where the difference is (concealed 秘匿 and merged 合算 areas,
  people the census lists without a small-area polygon), for the karte's ``sources`` block;
* :mod:`.estat` reads e-Stat's downloads as they come (the 小地域 boundary Shapefile, the
  小地域集計 CSV tables) and validates them with one all-errors report;
* :mod:`.lines` carries district membership across censuses when small-area boundaries change
  (areal interpolation with tobler) and reports every person that moves between districts;
* :mod:`.update` puts these together behind ``karte census import DIR --year YEAR``: it rebuilds
  the small areas, the age bands and every karte through :func:`karte.build.rebuild`, keeping the
  previous census as history.
"""
