"""Acceptance: apply a profile's per-zone rules to measured defects and give a verdict.

Scratches are sized by width, every other kind by enclosing diameter. A scratch is judged in
each zone it crosses; any other defect once, in the zone it touches whose limits are strictest
for its size (`Defect.zone`, see `strictest_zone`): the innermost zone is not always the strict
one -- a particle straddling the adhesive zone C (no limit) and the contact zone D is judged in D.
Contamination-only failures say "clean and re-inspect"; damage says "reject". A zone the
inspection could not settle (`core_pattern_reasons`) is UNDETERMINED unless it fails anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from .profile import Profile, SizeBand, ZoneRule
from .records import CONTAMINATION_KINDS, Defect, DefectKind, Status, Verdict, ZoneVerdict

__all__ = [
    "judge",
    "undetermined",
    "core_pattern_reasons",
    "judged_zones",
    "defect_margin",
    "strictest_zone",
]


def judged_zones(defect: Defect) -> tuple[str, ...]:
    """Zones a defect counts in: every zone a scratch crosses, else the one it is judged in (`zone`)."""
    if defect.kind == DefectKind.SCRATCH and defect.zones:
        return defect.zones
    return (defect.zone,)


def strictest_zone(profile: Profile, kind: DefectKind, size_um: float, touched: Sequence[str]) -> str:
    """Of the zones a defect touches, the one whose limits judge it hardest; the innermost on a tie.

    Hardness is the defect's margin there (size over the largest size the zone admits for its
    class; infinite where none is allowed, zero where the class is not judged).
    """
    best, best_margin = touched[0], -1.0
    for name in touched:
        rule = _rule(profile, name)
        if rule is None:
            continue
        bands = rule.scratches if kind == DefectKind.SCRATCH else rule.defects
        if bands == "unlimited":
            margin = 0.0
        else:
            largest = max((b.limit_um for b in bands if b.max_count != 0), default=0.0)
            margin = float("inf") if largest <= 0 else size_um / largest
        if margin > best_margin:
            best, best_margin = name, margin
    return best


def judge(defects: Sequence[Defect], profile: Profile, unsettled: Mapping[str, str] | None = None) -> Verdict:
    """PASS or FAIL with reasons per zone; UNDETERMINED when a zone named in `unsettled` (zone
    name -> why) does not fail and no other zone does. (A part not inspected: `undetermined`.)"""
    unsettled = unsettled or {}
    by_zone: dict[str, list[Defect]] = defaultdict(list)
    for d in defects:
        for z in judged_zones(d):
            by_zone[z].append(d)

    zone_verdicts: dict[str, ZoneVerdict] = {}
    reasons: list[str] = []
    failing: list[Defect] = []
    for rule in profile.zones:
        in_zone = by_zone.get(rule.name, [])
        scratches = [d for d in in_zone if d.kind == DefectKind.SCRATCH]
        others = [d for d in in_zone if d.kind != DefectKind.SCRATCH]
        zone_reasons: list[str] = []
        for what, items, bands in (("scratch", scratches, rule.scratches), ("defect", others, rule.defects)):
            broken, culprits = _apply(rule, what, items, bands)
            zone_reasons += broken
            failing += culprits
        reasons += zone_reasons
        if not zone_reasons and rule.name in unsettled:
            status, zone_reasons = Status.UNDETERMINED, [unsettled[rule.name]]
        else:
            status = Status.FAIL if zone_reasons else Status.PASS
        zone_verdicts[rule.name] = ZoneVerdict(
            status=status, n_scratches=len(scratches), n_defects=len(others), reasons=tuple(zone_reasons)
        )

    open_zones = [name for name, z in zone_verdicts.items() if z.status == Status.UNDETERMINED]
    if not reasons and open_zones:  # nothing fails, a zone is unsettled; if it is a film, cleaning removes it
        return Verdict(
            status=Status.UNDETERMINED,
            reasons=_unsettled_reasons(open_zones, unsettled),
            zones=zone_verdicts,
            action="clean and re-inspect",
        )
    if not reasons:
        n = len(defects)
        summary = "all zones within limits" + (
            f" ({n} feature{'s' * (n != 1)} within tolerance)" if n else ""
        )
        return Verdict(status=Status.PASS, reasons=(summary,), zones=zone_verdicts, action="accept")
    if all(d.kind in CONTAMINATION_KINDS for d in failing):
        return Verdict(
            status=Status.FAIL,
            reasons=tuple(reasons) + ("contamination: clean and re-inspect",),
            zones=zone_verdicts,
            action="clean and re-inspect",
        )
    return Verdict(status=Status.FAIL, reasons=tuple(reasons), zones=zone_verdicts, action="reject")


def undetermined(reasons: Iterable[str], profile: Profile | None = None) -> Verdict:
    """The verdict for a part that could not be inspected: never PASS, always with a reason."""
    reasons = tuple(reasons) or ("inspection could not be completed",)
    zones = {z.name: ZoneVerdict(status=Status.UNDETERMINED) for z in profile.zones} if profile else {}
    return Verdict(status=Status.UNDETERMINED, reasons=reasons, zones=zones, action="re-image")


def core_pattern_reasons(profile: Profile, core_radius_um: float | None, depth_grey: float) -> dict[str, str]:
    """The zones over the core that a round pattern centred on it leaves unsettled, with the reason.

    A pattern deeper than `detection.max_core_glow_grey` may be the fiber's own index profile
    (rings, a dark or bright centre) or a film or other defect centred on the core: they look
    alike, so the zones judging defects there cannot PASS (see `detect.base.flatten_core`).
    """
    limit = profile.detection.max_core_glow_grey
    if not core_radius_um or depth_grey <= limit:
        return {}
    why = (
        f"round pattern {depth_grey:.0f} grey deep centred on the core (over {limit:g}): the fiber's index "
        "pattern or a film, which look alike; clean and re-inspect, judge the core by eye if it stays"
    )
    return {
        z.name: why for z in profile.zones if z.inner_um / 2 < core_radius_um and z.defects != "unlimited"
    }


def defect_margin(defect: Defect, profile: Profile) -> float:
    """How close a defect comes to its zone's size limit: size / largest admitted size.

    0 in a zone that does not judge its class; > 1 when no band admits it (inf when the zone
    allows none at all). Counts are not considered here; see `judge` for those.
    """
    worst = 0.0
    for zone_name in judged_zones(defect):
        rule = _rule(profile, zone_name)
        if rule is None:
            continue
        bands = rule.scratches if defect.kind == DefectKind.SCRATCH else rule.defects
        if bands == "unlimited":
            continue
        largest = max((b.limit_um for b in bands if b.max_count != 0), default=0.0)
        if largest <= 0:
            return float("inf")
        worst = max(
            worst,
            defect.size_um / largest
            if _band_of(bands, defect.size_um) is not None
            else max(1.0 + 1e-9, defect.size_um / largest),
        )
    return worst


def _unsettled_reasons(zones: list[str], why: Mapping[str, str]) -> tuple[str, ...]:
    """One reason per distinct cause, naming its zones ("zones A, B: ...")."""
    by_cause: dict[str, list[str]] = defaultdict(list)
    for name in zones:
        by_cause[why[name]].append(name)
    return tuple(
        f"zone{'s' * (len(names) > 1)} {', '.join(names)}: {cause}" for cause, names in by_cause.items()
    )


def _rule(profile: Profile, name: str) -> ZoneRule | None:
    return next((z for z in profile.zones if z.name == name), None)


def _band_of(bands: Sequence[SizeBand], size_um: float) -> int | None:
    for i, band in enumerate(bands):
        if band.admits(size_um):
            return i
    return None


def _apply(rule: ZoneRule, what: str, items: list[Defect], bands) -> tuple[list[str], list[Defect]]:
    """Reasons this zone fails for one class of feature, and the features behind them."""
    if bands == "unlimited" or not items:
        return [], []
    plural = "scratches" if what == "scratch" else "defects"
    sized = "wide" if what == "scratch" else "across"
    if not bands:
        sizes = ", ".join(f"{d.size_um:.1f}" for d in sorted(items, key=lambda d: -d.size_um)[:5])
        return [
            f"zone {rule.name}: {len(items)} {plural if len(items) != 1 else what} ({sizes} µm {sized}), "
            "none allowed"
        ], list(items)
    reasons: list[str] = []
    culprits: list[Defect] = []
    per_band: dict[int, list[Defect]] = defaultdict(list)
    too_big: list[Defect] = []
    for d in items:
        band = _band_of(bands, d.size_um)
        (too_big if band is None else per_band[band]).append(d)
    if too_big:
        top = bands[-1]
        limit = f"over {top.up_to_um:g} µm" if top.up_to_um is not None else f"{top.below_um:g} µm or more"
        sizes = ", ".join(f"{d.size_um:.1f}" for d in sorted(too_big, key=lambda d: -d.size_um)[:5])
        reasons.append(
            f"zone {rule.name}: {len(too_big)} {plural if len(too_big) != 1 else what} {limit} "
            f"({sizes} µm), 0 allowed"
        )
        culprits += too_big
    for i, band in enumerate(bands):
        found = per_band.get(i, [])
        if band.max_count is not None and len(found) > band.max_count:
            lower = _lower_label(bands, i)
            reasons.append(
                f"zone {rule.name}: {len(found)} {plural} of {lower}{band.limit_um:g} µm, "
                f"at most {band.max_count} allowed"
            )
            culprits += found
    return reasons, culprits


def _lower_label(bands: Sequence[SizeBand], i: int) -> str:
    if i == 0:
        return "up to " if bands[i].up_to_um is not None else "under "
    return f"{bands[i - 1].limit_um:g}-"
