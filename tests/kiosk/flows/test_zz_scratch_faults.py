import time
from pathlib import Path
from typing import Any
from kiosk.refbackend import DEMO_VENUE
from kiosk.views import Alarm
from test_faults import warm_up, fill, small_disk, tx_state  # noqa

def test_old(make_sim: Any, demo_client, small_disk: Path) -> None:
    sim = make_sim(journal={"path": str(small_disk / "journal.db"), "min_free_mb": 0})
    warm_up(sim)
    sim.backend.pause()
    kept, kept_token = sim.backend.mint_receipt(DEMO_VENUE, 1900)
    assert sim.scan(kept_token).word == "checked_offline"
    filler = fill(small_disk)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2400)
    sim.submit_scan(token)
    assert sim.wait_view(Alarm).kind == "disk_full"
    sim.backend.resume()
    sim.backend.faults.delay_s = 0.3
    sim.backend.faults.delaying.clear()
    late, late_token = sim.backend.mint_receipt(DEMO_VENUE, 2600)
    filler.unlink()
    sim.submit_scan(late_token)
    assert sim.backend.faults.delaying.wait(5.0)
    fill(small_disk)
    print("VIEW", sim.wait_view(Alarm))
    filler.unlink()
    sim.backend.faults.delay_s = 0.0
    time.sleep(0.35)
    print("T0", time.monotonic())
    import faulthandler, sys
    try:
        assert sim.scan(token, ).word == "checked"
    finally:
        faulthandler.dump_traceback(sys.stdout, all_threads=True)
        import sqlite3
        c = sqlite3.connect(str(small_disk / "journal.db"))
        print([tuple(r) for r in c.execute("select id, tx, state, attempts, last_error from requests")])
