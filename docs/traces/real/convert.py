#!/usr/bin/env python3
"""Convert the measured PV/irradiance files shipped in the `pvanalytics` 0.2.2 wheel and the
BDEW H25 household profile shipped in the `demandlib` 0.2.2 wheel into replay traces
(`timestamp,pv_w,load_w`, one file per day). See README.md for sources, licences and the model.

Usage: python3 convert.py PVANALYTICS_DATA_DIR DEMANDLIB_BDEW_DATA_DIR OUT_DIR
"""
import csv
import datetime as dt
import os
import sys

ROOF_W = 6000.0  # 6 kWp
PR = 0.85  # performance ratio from plane-of-array irradiance to AC
ANNUAL_KWH = 4000.0  # household consumption the H25 profile is scaled to


def parse_us(s):
    # "2/1/2019 0:05" (naive, local standard time of the site)
    d, t = s.split(" ")
    m, day, y = (int(x) for x in d.split("/"))
    hh, mm = (int(x) for x in t.split(":"))
    return dt.datetime(y, m, day, hh, mm)


MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember"]


def read_h0(bdew_dir):
    """BDEW H25 (2025) household profile: kWh per quarter-hour by month and day type (WT
    weekday, SA Saturday, FT Sunday/holiday), scaled to ANNUAL_KWH."""
    rows = list(csv.reader(open(os.path.join(bdew_dir, "h25.csv"), encoding="utf-8")))
    months, kinds = rows[0][1:], rows[1][1:]
    prof = {}
    total = 0.0
    n = 0
    for q, r in enumerate(rows[2:98]):
        for m, k, v in zip(months, kinds, r[1:]):
            prof[(MONTHS.index(m) + 1, k, q)] = float(v)
            total += float(v)
            n += 1
    mean_kwh_q = total / n
    scale = ANNUAL_KWH / (365.0 * 96.0) / mean_kwh_q * 4.0 * 1000.0  # to W
    return {key: v * scale for key, v in prof.items()}


def load_w(prof, t):
    kind = "SA" if t.weekday() == 5 else ("FT" if t.weekday() == 6 else "WT")
    return prof[(t.month, kind, t.hour * 4 + t.minute // 15)]


def write_day(out_dir, name, offset, rows, prof):
    gaps = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
    if max(gaps) > dt.timedelta(minutes=15):
        print("skipped %s: a gap of %s in the source" % (name, max(gaps)), file=sys.stderr)
        return None
    path = os.path.join(out_dir, name + ".csv")
    tz = dt.timezone(dt.timedelta(hours=offset))
    with open(path, "w") as f:
        f.write("timestamp,pv_w,load_w\n")
        for t, pv in rows:
            f.write("%s,%.0f,%.0f\n" % (t.replace(tzinfo=tz).isoformat(), max(pv, 0.0), load_w(prof, t)))
    return path


def by_day(rows):
    days = {}
    for t, v in rows:
        days.setdefault(t.date(), []).append((t, v))
    return days


def main():
    pva, bdew, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    prof = read_h0(bdew)
    made = []
    # 1. NREL SERF east, 1-min AC power (W), Golden CO, UTC-7. Scaled so the file's peak is
    #    PR x 6 kWp.
    r = []
    for row in csv.DictReader(open(os.path.join(pva, "serf_east_1min_ac_power.csv"))):
        t = dt.datetime.fromisoformat(row["measured_on"]).replace(tzinfo=None)
        r.append((t, float(row["ac_power__752"])))
    k = PR * ROOF_W / max(v for _, v in r)
    for d, rows in sorted(by_day([(t, v * k) for t, v in r]).items()):
        if len(rows) >= 1000:
            made.append(write_day(out, "serf-1min-%s" % d, -7, rows, prof))
    # 2. NREL MIDC BMS, 1-min GHI (W/m2), Golden CO, UTC-7, treated as plane-of-array.
    r = []
    for row in csv.reader(open(os.path.join(pva, "midc_bms_ghi_20220120.csv"))):
        if not row[0]:
            continue
        t = dt.datetime.fromisoformat(row[0]).replace(tzinfo=None)
        r.append((t, float(row[1]) / 1000.0 * ROOF_W * PR))
    for d, rows in sorted(by_day(r).items()):
        made.append(write_day(out, "bms-1min-%s" % d, -7, rows, prof))
    # 2b. NREL SERF east, 15-min AC power, the first five days of July 2016, scaled as above
    #     (its own peak over those days = PR x 6 kWp).
    r = []
    for row in csv.DictReader(open(os.path.join(pva, "serf_east_15min_ac_power.csv"))):
        if not row["measured_on"] or row["ac_power"] == "":
            continue
        t = dt.datetime.fromisoformat(row["measured_on"]).replace(tzinfo=None)
        if dt.date(2016, 7, 1) <= t.date() <= dt.date(2016, 7, 5):
            r.append((t, float(row["ac_power"])))
    k = PR * ROOF_W / max(v for _, v in r)
    for d, rows in sorted(by_day([(t, v * k) for t, v in r]).items()):
        made.append(write_day(out, "serf-15min-%s" % d, -7, rows, prof))
    # 3. NREL RMIS, 5-min plane-of-array irradiance (W/m2), Golden CO, UTC-7.
    r = []
    for row in csv.DictReader(open(os.path.join(pva, "irradiance_RMIS_NREL.csv"))):
        if row["irradiance_poa__7984"] == "":
            continue
        r.append((parse_us(row["measured_on"]), float(row["irradiance_poa__7984"]) / 1000.0 * ROOF_W * PR))
    for d, rows in sorted(by_day(r).items()):
        if len(rows) >= 250:
            made.append(write_day(out, "rmis-5min-%s" % d, -7, rows, prof))
    # 4. NREL RMIS weather station, 5-min plane-of-array irradiance, January 2022.
    r = []
    for row in csv.DictReader(open(os.path.join(pva, "rmis_weather_data.csv"))):
        if row["Plane of array"] == "":
            continue
        r.append((parse_us(row[""]), float(row["Plane of array"]) / 1000.0 * ROOF_W * PR))
    for d, rows in sorted(by_day(r).items()):
        if len(rows) >= 250:
            made.append(write_day(out, "rmis-5min-%s" % d, -7, rows, prof))
    for p in made:
        if p:
            print(p)


if __name__ == "__main__":
    main()
