"""An OCPP 1.6J central system built on the PyPI `ocpp` library and `websockets`, driven by the
Rust tests: every frame in and out and every connection event is printed to stdout as one JSON
line; commands arrive on stdin as JSON lines:

  {"call": "SetChargingProfile", "payload": {...camelCase...}, "tag": "x"}  -> {"ev": "reply", ...}
  {"raw": "<text>"}      send a raw text frame (malformed-message tests)
  {"close": true}        close the charge point's connection
"""
import argparse, asyncio, base64, json, re, ssl, sys
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

def out(ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()

def now():
    return datetime.now(timezone.utc).isoformat()

ARGS = None
NEXT_TX = [0]
CURRENT = [None]

class Cs(ChargePoint):
    async def route_message(self, raw_msg):
        try:
            out({"ev": "recv", "msg": json.loads(raw_msg)})
        except ValueError:
            out({"ev": "recv", "raw": raw_msg})
        await super().route_message(raw_msg)

    async def _send(self, message):
        out({"ev": "send", "msg": json.loads(message)})
        await super()._send(message)

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor, charge_point_model, **kw):
        return call_result.BootNotification(current_time=now(), interval=ARGS.heartbeat, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self):
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, connector_id, error_code, status, **kw):
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag):
        st = AuthorizationStatus.blocked if id_tag == "BLOCKED" else AuthorizationStatus.accepted
        return call_result.Authorize(id_tag_info={"status": st})

    @on(Action.start_transaction)
    def on_start(self, connector_id, id_tag, meter_start, timestamp, **kw):
        NEXT_TX[0] += 1
        st = AuthorizationStatus.blocked if id_tag == "BLOCKED" else AuthorizationStatus.accepted
        return call_result.StartTransaction(transaction_id=NEXT_TX[0], id_tag_info={"status": st})

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop, timestamp, transaction_id, **kw):
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter(self, connector_id, meter_value, **kw):
        return call_result.MeterValues()

def snake(k):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower()

async def commands():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = json.loads(line)
        cp = CURRENT[0]
        if cp is None:
            out({"ev": "error", "why": "no charge point connected", "cmd": cmd})
            continue
        if "raw" in cmd:
            await cp._connection.send(cmd["raw"])
        elif "close" in cmd:
            await cp._connection.close()
        elif "call" in cmd:
            asyncio.ensure_future(do_call(cp, cmd))

async def do_call(cp, cmd):
    kwargs = {snake(k): v for k, v in cmd.get("payload", {}).items()}
    try:
        res = await cp.call(getattr(call, cmd["call"])(**kwargs), suppress=False)
        out({"ev": "reply", "tag": cmd.get("tag"), "call": cmd["call"], "payload": res.__dict__})
    except Exception as e:
        out({"ev": "reply", "tag": cmd.get("tag"), "call": cmd["call"], "error": repr(e)})

async def handler(ws):
    path = ws.request.path
    out({"ev": "connected", "path": path, "subprotocol": ws.subprotocol,
         "authorization": ws.request.headers.get("Authorization")})
    cp = Cs(path.strip("/").split("/")[-1], ws)
    CURRENT[0] = cp
    try:
        await cp.start()
    except websockets.exceptions.ConnectionClosed:
        pass
    out({"ev": "closed"})

def check_auth(conn, request):
    if ARGS.password:
        want = "Basic " + base64.b64encode(f"{ARGS.user}:{ARGS.password}".encode()).decode()
        if request.headers.get("Authorization") != want:
            out({"ev": "refused", "authorization": request.headers.get("Authorization")})
            return conn.respond(401, "bad credentials\n")
    return None

async def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--heartbeat", type=int, default=300)
    p.add_argument("--first-tx", type=int, default=1000)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    ARGS = p.parse_args()
    NEXT_TX[0] = ARGS.first_tx - 1
    ctx = None
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
    async with websockets.serve(handler, "127.0.0.1", ARGS.port, subprotocols=["ocpp1.6"],
                                process_request=check_auth, ssl=ctx):
        out({"ev": "listening", "port": ARGS.port})
        await commands()

asyncio.run(main())
