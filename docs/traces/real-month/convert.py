#!/usr/bin/env python3
"""Convert the BSRN Payerne June 2016 station-to-archive file shipped in the pvlib 0.11.0 source
distribution (`pvlib/data/bsrn-lr0100-pay0616.dat`) and the BDEW H25 household profile shipped
in the demandlib 0.2.2 wheel into one month-long replay trace (`timestamp,pv_w,load_w`).
See README.md for sources, licences and the model.

Usage: python3 convert.py BSRN_DAT_FILE DEMANDLIB_BDEW_DATA_DIR OUT_CSV
"""
import datetime as dt
import os
import sys

# The house load and the roof model are those of the single-day corpus (docs/traces/real).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "real"))
from convert import PR, ROOF_W, load_w, read_h0  # noqa: E402

CEST = dt.timezone(dt.timedelta(hours=2))  # Payerne's legal time all of June 2016
MISSING = -999.0  # BSRN's missing-value code for irradiance


def read_lr0100(path):
    """The logical record 0100 (basic measurements) of a BSRN station-to-archive file: one
    minute per two lines; the first line is day of month, minute of day (UTC), then global
    horizontal irradiance mean, std, min, max and direct irradiance mean, std, min, max; the
    second line holds diffuse, long-wave down, temperature, humidity and pressure (not used).
    Returns [(utc datetime, ghi W/m2 or None when missing)] and the file's year and month."""
    lines = open(path, encoding="ascii").read().split("\n")
    # "*U0001", then station number, month, year, file version: " 21  6 2016  1".
    month, year = (int(x) for x in lines[1].split()[1:3])
    start = lines.index("*U0100") + 1
    out = []
    i = start
    while i + 1 < len(lines) and lines[i].strip() and not lines[i].startswith("*"):
        first = lines[i].split()
        if len(first) != 10 or len(lines[i + 1].split()) != 11:
            raise SystemExit("line %d: not an LR0100 pair of lines" % (i + 1))
        day, minute, ghi = int(first[0]), int(first[1]), float(first[2])
        t = dt.datetime(year, month, day, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minute)
        out.append((t, None if ghi <= MISSING else ghi))
        i += 2
    return out, year, month


def main():
    src, bdew, out = sys.argv[1:4]
    rows, year, month = read_lr0100(src)
    prof = read_h0(bdew)
    missing = [t for t, g in rows if g is None]
    for t in missing:
        print("left out %s UTC: GHI missing in the source" % t.strftime("%Y-%m-%d %H:%M"),
              file=sys.stderr)
    kept = [(t, g) for t, g in rows if g is not None]
    gaps = [b[0] - a[0] for a, b in zip(kept, kept[1:])]
    if max(gaps) > dt.timedelta(minutes=15):
        raise SystemExit("a gap of %s in the source: longer than the replay's 15-min step" % max(gaps))
    with open(out, "w") as f:
        f.write("timestamp,pv_w,load_w\n")
        for t, ghi in kept:
            local = t.astimezone(CEST)
            pv = max(ghi, 0.0) / 1000.0 * ROOF_W * PR
            # load_w looks the profile up by the local (legal) time, as people live by it.
            f.write("%s,%.0f,%.0f\n" % (local.isoformat(), pv, load_w(prof, local.replace(tzinfo=None))))
    print("%s: %d rows, %04d-%02d, %d minutes missing in the source left out"
          % (out, len(kept), year, month, len(missing)))


if __name__ == "__main__":
    main()
