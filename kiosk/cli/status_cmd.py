"""`kiosk status`: online/offline, pending uploads, offline exposure, last sync, clock, journal."""

from __future__ import annotations

import argparse
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show the kiosk's health")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk import __version__
    from kiosk.cli._common import flow_context, iso, load, print_json
    from kiosk.errors import BackendError
    from kiosk.figures import read_figures
    from kiosk.flows.offline import clears
    from kiosk.journal.repair import last_recovery

    cfg = load(args)
    with flow_context(cfg) as ctx:
        online, problem = True, None
        try:
            ctx.client.ping()
        except BackendError as exc:
            online, problem = False, str(exc)
        figures = read_figures(ctx.journal, ctx.clocks())
        count, total = figures.offline_count, figures.offline_exposure_cents
        conflicts = ctx.journal.conflicts()
        sources, sources_at = _sources(ctx.journal)
        cleared = clears(ctx.journal)
        offline_off = ctx.policy.conflicts_reached(figures.conflicts_24h)
        recovery = last_recovery(ctx.journal.get_meta)
        doc: dict[str, Any] = {
            "device": cfg.device.id,
            "venue": cfg.device.venue,
            "version": __version__,
            "online": online,
            "backend_problem": problem,
            "pending": figures.pending,
            "oldest_pending": iso(figures.oldest_pending_at),
            "quarantined": figures.quarantined,
            "offline_count": count,
            "offline_exposure_cents": total,
            "conflicts_24h": figures.conflicts_24h,
            "max_conflicts_per_day": cfg.offline.max_conflicts_per_day,
            "offline_off_for_conflicts": offline_off,
            "conflicts_cleared_at": iso(cleared[-1].at) if cleared else None,
            "last_sync": iso(figures.last_sync),
            "clock_synced": ctx.clock_synced(),
            "journal_path": str(ctx.journal.path),
            "journal_bytes": figures.journal_bytes,
            "journal_recovery": None
            if recovery is None
            else {
                "how": recovery.how,
                "at": iso(recovery.at),
                "old_file": recovery.aside,
                "rows_salvaged": recovery.rows_salvaged,
                "rows_lost": recovery.rows_lost,
                "salvaged": recovery.salvaged,
                "lost": recovery.lost,
                "lost_uncounted": recovery.unknown,
                "scans_without_upload": recovery.orphaned,
            },
            "disk_free_bytes": figures.disk_free_bytes,
            "conflicts": [{"tx": c.tx, "at": iso(c.at)} for c in conflicts],
            "sources": sources,
            "sources_at": iso(sources_at),
        }
    if args.json:
        print_json(doc)
        return 0
    print(f"kiosk {doc['device']} ({doc['venue']}), version {__version__}")
    print(f"backend:   {'online' if online else 'OFFLINE: ' + str(problem)}")
    print(f"pending:   {doc['pending']} upload(s), oldest {doc['oldest_pending'] or '-'}")
    print(f"quarantined: {doc['quarantined']} request(s)")
    print(f"offline:   {count} check(s), {total / 100:.2f} EUR not yet uploaded")
    limit = cfg.offline.max_conflicts_per_day
    line = f"conflicts: {figures.conflicts_24h} in 24 h (limit {limit})"
    if offline_off:
        line += ": offline acceptance OFF (kiosk offline clear-conflicts)"
    if cleared:
        line += f", last cleared {doc['conflicts_cleared_at']} by {cleared[-1].by}"
    print(line)
    print(f"last sync: {doc['last_sync'] or 'never'}")
    print(f"clock:     {'synchronised' if doc['clock_synced'] else 'NOT synchronised (NTP)'}")
    print(f"journal:   {doc['journal_path']} ({doc['journal_bytes']} bytes)")
    if recovery is not None:
        print(f"journal repaired {iso(recovery.at)}: {recovery.summary()}")
    for source in sources:
        state = "ok" if source["ok"] else "FAIL: " + source["detail"]
        print(f"source:    {source['name']} {state}")
    if not sources:
        print("source:    no report (kiosk run has not started its sources yet)")
    if conflicts:
        print(f"all conflicts: {len(conflicts)} (see kiosk history --local)")
        for c in conflicts:
            print(f"  {c.tx} at {iso(c.at)}")
    return 0


def _sources(journal: Any) -> tuple[list[dict[str, Any]], float | None]:
    """Each input source as the running service last reported it (``kiosk run`` writes
    it on every change); all of them not ok once the service has stopped."""
    from kiosk.source_states import read_states

    doc = read_states(journal)
    if doc is None:
        return [], None
    if doc["running"]:
        return doc["sources"], doc["at"]
    stopped = [
        {"name": s["name"], "ok": False, "detail": "kiosk run is stopped"} for s in doc["sources"]
    ]
    return stopped, doc["at"]
