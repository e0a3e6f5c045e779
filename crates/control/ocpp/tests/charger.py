"""An OCPP 1.6J charger built on the PyPI `ocpp` library's ChargePoint and `websockets`, driven
by the Rust tests (central-system mode). Every frame in and out is printed to stdout as one JSON
line with a system-wide monotonic time `t`; commands arrive on stdin as JSON lines:

  {"call": "StatusNotification", "payload": {...camelCase...}, "tag": "x"} -> {"ev": "reply", ...}
  {"raw": "<text>"}      send a raw text frame (malformed-message tests)
  {"close": true}        close the connection
  {"flood": 150}         send that many Heartbeat CALLs at once
  {"car": 16}            a car that takes up to 16 A charges (follows the profile; MeterValues)
  {"car": null}          no car charging

A charging profile is answered Accepted once the library validated it against the OCPP 1.6
schema; the simulated car then draws min(limit, car) and the charger sends MeterValues at once
and every --meter seconds.
"""
import argparse, asyncio, base64, json, re, sys, time
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

def out(ev):
    ev["t"] = time.monotonic()
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()

def now():
    return datetime.now(timezone.utc).isoformat()

ARGS = None
TASKS = set()

def spawn(coro):
    # asyncio keeps only weak references to tasks: hold them until they end.
    t = asyncio.ensure_future(coro)
    TASKS.add(t)
    t.add_done_callback(TASKS.discard)
    return t

STATE = {"car": None, "limit": None, "tx": None}

class Cp(ChargePoint):
    async def route_message(self, raw_msg):
        try:
            out({"ev": "recv", "msg": json.loads(raw_msg)})
        except ValueError:
            out({"ev": "recv", "raw": raw_msg})
        await super().route_message(raw_msg)

    async def _send(self, message):
        out({"ev": "send", "msg": json.loads(message)})
        await super()._send(message)

    @on(Action.set_charging_profile)
    def on_profile(self, connector_id, cs_charging_profiles, **kw):
        periods = cs_charging_profiles["charging_schedule"]["charging_schedule_period"]
        STATE["limit"] = periods[0]["limit"]
        spawn(send_meter(self))
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear(self, **kw):
        STATE["limit"] = None
        return call_result.ClearChargingProfile(status="Accepted")

    @on(Action.change_configuration)
    def on_config(self, key, value):
        return call_result.ChangeConfiguration(status="Accepted")

def draw():
    if STATE["car"] is None:
        return 0.0
    lim = STATE["limit"] if STATE["limit"] is not None else ARGS.max
    return min(float(STATE["car"]), float(lim))

async def send_meter(cp):
    if STATE["car"] is None:
        return
    a = draw()
    sv = [{"value": f"{a:.1f}", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
          {"value": f"{a * 230:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
          {"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    kw = {"connector_id": 1, "meter_value": [{"timestamp": now(), "sampled_value": sv}]}
    if STATE["tx"] is not None:
        kw["transaction_id"] = STATE["tx"]
    try:
        await cp.call(call.MeterValues(**kw))
    except Exception as e:
        out({"ev": "error", "why": repr(e)})

async def meter_loop(cp):
    while True:
        await asyncio.sleep(ARGS.meter)
        await send_meter(cp)

def snake(k):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower()

def snake_all(v):
    if isinstance(v, dict):
        return {snake(k): snake_all(x) for k, x in v.items()}
    if isinstance(v, list):
        return [snake_all(x) for x in v]
    return v

async def do_call(cp, cmd):
    kwargs = {snake(k): snake_all(v) for k, v in cmd.get("payload", {}).items()}
    try:
        res = await cp.call(getattr(call, cmd["call"])(**kwargs), suppress=False)
        d = res.__dict__
        if cmd["call"] == "StartTransaction":
            STATE["tx"] = d["transaction_id"]
        out({"ev": "reply", "tag": cmd.get("tag"), "call": cmd["call"], "payload": d})
    except Exception as e:
        out({"ev": "reply", "tag": cmd.get("tag"), "call": cmd["call"], "error": repr(e)})

async def commands(cp, ws):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = json.loads(line)
        if "raw" in cmd:
            await ws.send(cmd["raw"])
        elif "flood" in cmd:
            for i in range(cmd["flood"]):
                await ws.send(json.dumps([2, f"f{i}", "Heartbeat", {}]))
            out({"ev": "flooded"})
        elif "close" in cmd:
            await ws.close()
            out({"ev": "closed"})
        elif "car" in cmd:
            STATE["car"] = cmd["car"]
            spawn(send_meter(cp))
        elif "call" in cmd:
            spawn(do_call(cp, cmd))

async def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--max", type=float, default=32.0)
    p.add_argument("--meter", type=float, default=2.0)
    ARGS = p.parse_args()
    headers = {}
    if ARGS.password:
        tok = base64.b64encode(f"{ARGS.id}:{ARGS.password}".encode()).decode()
        headers["Authorization"] = "Basic " + tok
    try:
        ws = await websockets.connect(f"{ARGS.url}/{ARGS.id}", subprotocols=["ocpp1.6"],
                                      additional_headers=headers)
    except Exception as e:
        out({"ev": "refused", "why": repr(e)})
        await asyncio.sleep(3600)
        return
    out({"ev": "connected", "subprotocol": ws.subprotocol})
    cp = Cp(ARGS.id, ws)
    spawn(meter_loop(cp))
    spawn(commands(cp, ws))
    try:
        await cp.start()
    except websockets.exceptions.ConnectionClosed:
        pass
    out({"ev": "closed"})
    await asyncio.sleep(3600)

asyncio.run(main())
